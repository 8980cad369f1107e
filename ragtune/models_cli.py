"""`ragtune models`: the embedded default models, where they live and whether they are ready."""

from __future__ import annotations

import json

import click

# (key in describe_models(), label); a key a model lacks is left out of its block.
_FIELDS = [
    ("upstream", "upstream"),
    ("package", "package"),
    ("license", "licence"),
    ("quantization", "quantisation"),
    ("folder", "folder"),
    ("gguf", "gguf file"),
]


@click.command("models")
@click.option("--json", "as_json", is_flag=True, help="Print the list as JSON.")
@click.option(
    "--prepare",
    is_flag=True,
    help="Build the default generator's folder now (once, about half a minute) and print its path.",
)
def models(as_json: bool, prepare: bool) -> None:
    """List the embedded defaults that `default` names (for --base, --model, --ft, --retriever)."""
    from ragtune.models import default_generator_dir, describe_models

    if prepare:
        folder = default_generator_dir(materialise=True)
        if not as_json:
            click.echo(folder)
            return
    described = describe_models()
    if as_json:
        click.echo(json.dumps(described, indent=2))
        return
    click.echo("\n\n".join(_block(m) for m in described))
    click.echo(f"\n{_cache_line()}")


def _cache_line() -> str:
    from ragtune.derived_cache import LIMIT_ENV, entries, limit_bytes
    from ragtune.settings import cache_dir

    found = entries()
    limit = limit_bytes()
    held = f"held to {limit / 1024**3:g} GB" if limit else "no limit"
    return (
        f"conversions cached in {cache_dir()}: {len(found)}, {sum(e[2] for e in found) / 1024**3:.2f} GB "
        f"({held}, least recently used evicted first; ${LIMIT_ENV} sets it, 0 for no limit)"
    )


def _block(m: dict) -> str:
    lines = [f"{m['role']}: {m['name']}"]
    lines += [f"  {label:<13} {m[key]}" for key, label in _FIELDS if m.get(key)]
    if m["ready"]:
        ready = "yes"
    elif m["role"] == "generator" and not m.get("problem"):
        ready = "no (built on first use, or now with `ragtune models --prepare`)"
    else:
        ready = "no"
    lines.append(f"  {'ready':<13} {ready}")
    if m.get("problem"):
        lines.append(f"  {'problem':<13} {m['problem']}")
    return "\n".join(lines)
