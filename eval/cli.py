"""`ragtune eval`: compare systems (`ragtune eval --qa ... --systems ...`), `score` and `retrieval`."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click

from ragtune.errors import RagtuneError
from ragtune.models import GENERATOR_HELP, RETRIEVER_HELP
from ragtune.retrieval import retrieval_options


def _pairs(values: tuple[str, ...], flag: str) -> dict[str, str]:
    out = {}
    for v in values:
        name, sep, target = v.partition("=")
        if not sep or not name or not target:
            raise RagtuneError(f"{flag} expects NAME=VALUE (e.g. {flag} ft=models/ft), got {v!r}")
        out[name] = target
    return out


@click.group("eval", invoke_without_command=True)
@click.option("--qa", type=click.Path(dir_okay=False), help="Held-out questions (.jsonl).")
@click.option("--systems", default=None, help="Comma list: base,fewshot,rag,ft,ft+rag or NAME / NAME+rag.")
@click.option("--systems-file", type=click.Path(dir_okay=False), help="YAML that declares the systems.")
@click.option(
    "--base", "base_dir", default=None, help=f"Base generator (systems base, fewshot, rag): {GENERATOR_HELP}."
)
@click.option(
    "--ft", "ft_dir", default=None, help=f"Fine-tuned generator (systems ft, ft+rag): {GENERATOR_HELP}."
)
@click.option(
    "--model",
    "models",
    multiple=True,
    help=f"More generators: NAME=DIR (systems NAME, NAME+rag), DIR {GENERATOR_HELP}.",
)
@click.option("--url", "urls", multiple=True, help="Running servers: NAME=URL (black box via HTTP).")
@click.option("--api-key", default=None, envvar="RAGTUNE_API_KEY", help="Bearer key of the servers.")
@click.option("--index", default=None, help="Index folder for in-process retrieval.")
@click.option("--index-version", default=None, help="Pin an index version (default: CURRENT).")
@click.option("--retriever", default=None, help=f"Retriever: {RETRIEVER_HELP}; unset: the index's own.")
@retrieval_options
@click.option("--top-k", default=4, show_default=True, help="Passages retrieved per question.")
@click.option(
    "--train", "train_qa", default=None, help="Training split: few-shot examples are drawn from it."
)
@click.option("--fewshot", default=3, show_default=True, help="k for the fewshot system.")
@click.option("--freshness-qa", default=None, help="Questions about the facts an index refresh changed.")
@click.option("--general-qa", default=None, help="General held-out QA for the forgetting check (ft vs base).")
@click.option("--max-forgetting", type=float, default=None, help="Fail (exit 1) if ft loses more F1 points.")
@click.option(
    "--metric",
    type=click.Choice(["em", "f1", "contains", "judge"]),
    default=None,
    help="What the verdict decides on: exact match, token F1, the gold answer contained in the reply "
    "(guarded against lists of candidates), or a judge model's yes/no. Default: judge with --judge, "
    "else contains (a chatty model's right answer in a sentence counts).",
)
@click.option(
    "--judge",
    default=None,
    help="Judge model grading each reply against the gold: an OpenAI-compatible URL or a model folder.",
)
@click.option("--judge-api-key", default=None, envvar="RAGTUNE_JUDGE_API_KEY", help="Bearer key of --judge.")
@click.option("--max-tokens", default=32, show_default=True)
@click.option("--batch-size", default=8, show_default=True, help="Questions per in-process generate call.")
@click.option("--bootstrap", "n_resamples", default=1000, show_default=True, help="Bootstrap resamples.")
@click.option("--seed", default=0, show_default=True)
@click.option("--out", default=None, type=click.Path(file_okay=False), help="Report folder.")
@click.option("--no-resume", is_flag=True, help="Ignore cached predictions in --out.")
@click.pass_context
def eval_group(
    ctx: click.Context,
    qa,
    systems,
    systems_file,
    base_dir,
    ft_dir,
    models,
    urls,
    api_key,
    index,
    index_version,
    retriever,
    retrieval,
    fusion,
    fusion_weight,
    top_k,
    train_qa,
    fewshot,
    freshness_qa,
    general_qa,
    max_forgetting,
    metric,
    judge,
    judge_api_key,
    max_tokens,
    batch_size,
    n_resamples,
    seed,
    out,
    no_resume,
) -> None:
    """Compare base, few-shot, RAG, fine-tune and both on the same questions; write the report."""
    if ctx.invoked_subcommand is not None:
        return
    if not qa or not out or not (systems or systems_file):
        raise click.UsageError(
            "give --qa TEST.jsonl, --systems (or --systems-file) and --out DIR, "
            "or a subcommand (score, retrieval)"
        )
    from eval.compare import merge_results
    from eval.report import write_report

    specs = _specs(ctx.params)
    tuned = [s for s in specs if s.model and s.base_model]
    if general_qa and not tuned:
        raise RagtuneError("--general-qa needs a fine-tuned system with a base (--ft DIR and --base DIR)")
    parts = _compare_splits(specs, ctx.params)
    passed, gate_msg = True, None
    if general_qa:
        forget, passed, gate_msg = _forgetting_gate(tuned, ctx.params)
        parts.append(forget)
    results = merge_results(*parts)
    paths = write_report(results, out)
    _summary(results)
    if gate_msg:
        click.echo(gate_msg)
    click.echo(f"report: {paths['html']}")
    if not passed:
        sys.exit(1)


def _specs(p: dict) -> list:
    """The systems to compare: from the --systems-file YAML, or from --systems plus its models and urls."""
    from eval.systems import load_systems_yaml, parse_systems

    if p["systems_file"]:
        return load_systems_yaml(p["systems_file"])
    named = _pairs(p["models"], "--model")
    named.update({k: v for k, v in (("base", p["base_dir"]), ("ft", p["ft_dir"])) if v})
    return parse_systems(
        p["systems"],
        models=named,
        urls=_pairs(p["urls"], "--url"),
        index=p["index"],
        index_version=p["index_version"],
        retriever=p["retriever"],
        retrieval_mode=p["retrieval"],
        fusion=p["fusion"],
        fusion_weight=p["fusion_weight"],
        top_k=p["top_k"],
        fewshot=p["fewshot"],
        seed=p["seed"],
        max_tokens=p["max_tokens"],
        api_key=p["api_key"],
    )


def _compare_splits(specs: list, p: dict) -> list[dict]:
    """Run the comparison on the test split and, with --freshness-qa, on the freshness split."""
    from eval.compare import run_comparison

    if p["metric"] == "judge" and not p["judge"]:
        raise click.UsageError("--metric judge needs --judge URL|FOLDER (the judge model)")
    judge = None
    if p["judge"]:
        from eval.judge import Judge

        judge = Judge(p["judge"], api_key=p["judge_api_key"], cache_dir=p["out"])
    common = {
        "metric": p["metric"] or ("judge" if judge else None),
        "judge": judge,
        "out_dir": p["out"],
        "train_qa": p["train_qa"],
        "seed": p["seed"],
        "n_resamples": p["n_resamples"],
        "batch_size": p["batch_size"],
        "resume": not p["no_resume"],
    }
    try:
        parts = [run_comparison(p["qa"], specs, split="test", **common)]
        if p["freshness_qa"]:
            parts.append(run_comparison(p["freshness_qa"], specs, split="freshness", **common))
    finally:
        if judge is not None:
            judge.close()
    return parts


def _forgetting_gate(tuned: list, p: dict) -> tuple[dict, bool, str | None]:
    """Measure every fine-tuned model's forgetting on --general-qa against its base (each model once, named
    by the first system that runs it); return (results part, all passed, the gate messages)."""
    from eval.forget import forgetting_of, gate

    by_base: dict[str, dict[str, str]] = {}
    for s in tuned:
        models = by_base.setdefault(str(s.base_model), {})
        if str(s.model) not in models.values():
            models[s.name] = str(s.model)
    measured = []
    for base, models in by_base.items():
        measured += forgetting_of(
            models,
            base,
            p["general_qa"],
            seed=p["seed"],
            n_resamples=p["n_resamples"],
            batch_size=p["batch_size"],
            max_tokens=p["max_tokens"],
        )
    messages, passed = [], True
    for f in measured:
        ok, msg = gate(f, p["max_forgetting"])
        f["gate"] = {"max_forgetting": p["max_forgetting"], "passed": ok}
        passed = passed and ok
        messages.append(f"{f['name']}: {msg}" if len(measured) > 1 else msg)
    return {"forgetting": measured}, passed, "\n".join(messages) or None


def _summary(results: dict) -> None:
    shown = list(dict.fromkeys((results["config"].get("metric", "exact_match"), "exact_match", "f1")))
    click.echo(f"verdict metric: {shown[0]}")
    for split, s in results["splits"].items():
        click.echo(f"[{split}] n={s['qa']['n']}")
        for name, r in s["systems"].items():
            m = r["metrics"]
            line = "  ".join(
                f"{k} {m[k]['mean']:.1f} [{m[k]['low']:.1f}, {m[k]['high']:.1f}]" for k in shown if k in m
            )
            click.echo(f"  {name:<14} {line}")


@eval_group.command("score")
@click.option(
    "--qa", required=True, type=click.Path(dir_okay=False), help="Questions with gold answers (.jsonl)."
)
@click.option(
    "--predictions",
    required=True,
    type=click.Path(dir_okay=False),
    help='Predictions (.jsonl): {"id", "prediction", "passages"?} per line.',
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--bootstrap", "n_resamples", default=1000, show_default=True)
@click.option("--seed", default=0, show_default=True)
def score(qa, predictions, as_json, n_resamples, seed) -> None:
    """Score predictions made elsewhere, without loading any model."""
    from eval.compare import score_predictions

    res = score_predictions(qa, predictions, n_resamples=n_resamples, seed=seed)
    if as_json:
        click.echo(json.dumps(res, indent=2))
        return
    click.echo(f"n={res['n']} missing={res['missing']} unknown_ids={res['unknown_ids']}")
    for k, v in res["ci"].items():
        click.echo(f"{k:<18} {v['mean']:.4f}  95% CI [{v['low']:.4f}, {v['high']:.4f}]")


@eval_group.command("retrieval")
@click.option(
    "--beir",
    "beir_dir",
    required=True,
    type=click.Path(file_okay=False),
    help="BEIR folder: corpus.jsonl, queries.jsonl, qrels/SPLIT.tsv.",
)
@click.option(
    "--index", "index_dir", required=True, type=click.Path(file_okay=False), help="Index built from it."
)
@click.option("--retriever", default=None, help=f"Retriever: {RETRIEVER_HELP}; unset: the index's own.")
@retrieval_options
@click.option("--split", default="test", show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON (metrics; --per-query adds each query).")
@click.option("--per-query", is_flag=True, help="Include per-query metrics in the JSON.")
def retrieval(
    beir_dir, index_dir, retriever, retrieval, fusion, fusion_weight, split, as_json, per_query
) -> None:
    """nDCG@10, Recall@10/100, MRR@10 of an index on a BEIR split (BEIR/MTEB's computation)."""
    from eval.beir import evaluate_beir
    from retriever import RetrievalMode

    if not Path(index_dir).is_dir():
        raise RagtuneError(
            f"index {index_dir} does not exist; build it with "
            f"`ragtune ingest {Path(beir_dir) / 'corpus.jsonl'} --index {index_dir}`"
        )
    mode = RetrievalMode.from_options(retrieval, fusion, fusion_weight)
    res = evaluate_beir(
        beir_dir, index_dir, retriever=retriever, split=split, progress=not as_json, mode=mode
    )
    if not per_query:
        res.pop("per_query")
    if as_json:
        click.echo(json.dumps(res, indent=2, default=str))
        return
    m = res["metrics"]
    click.echo(
        f"{res['n_queries']} queries, index version {res['index_version']}, retrieval {res['retrieval']['kind']}"
    )
    for k in ("ndcg@10", "recall@10", "recall@100", "mrr@10"):
        click.echo(f"{k:<11} {m[k]:.5f}")
