"""Which GGUF files the llama.cpp backend loads for `--model` and `--lora name=ADAPTER`, and which Hugging
Face tokenizer renders its prompts.

- `default`: a conversion of its materialised folder (f16 unless `--gguf-type` says otherwise), or with
  `--gguf-type shipped` the model's own shipped GGUF (Q4_1) as is. Why f16 by default: on RAG prompts
  prefill decides, and Q4_1 has no GEMM kernel on AVX2, so it prefills at ~340 tokens/s against f16's ~600
  (TTFT 1.4 s against 0.86 s on the same server); its answers also match fp32's on 97.5% of questions against
  Q4_1's 65% (docs/llamacpp.md). Prompts are rendered with the tokenizer of the materialised folder, the one
  the transformers backend uses.
- a `.gguf` file: as is; the tokenizer is the folder beside it when that folder has one, else the one
  transformers reads out of the GGUF itself.
- a model folder: its `model.gguf` when `ragtune export --gguf` wrote one, else a conversion made once and
  cached under $RAGTUNE_CACHE_DIR/gguf/ (f16 unless `--gguf-type` says otherwise).
- an adapter: a GGUF LoRA file as is, or a PEFT LoRA folder (the output of `ragtune tune generator`)
  converted once and cached the same way.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune import models
from ragtune.errors import RagtuneError
from ragtune.gguf_files import GGUF_IN_FOLDER, GGUF_TYPES

DEFAULT_CONVERSION = "f16"  # answers match fp32's on 97.5-100% of questions (docs/llamacpp.md)
SHIPPED = "shipped"  # --gguf-type for the default model's own GGUF file, as shipped
SERVE_GGUF_TYPES = (*GGUF_TYPES, SHIPPED)


@dataclass
class LlamaModelFiles:
    gguf: Path
    tokenizer_dir: Path
    name: str
    tokenizer_kwargs: dict[str, Any] = field(default_factory=dict)
    loras: dict[str, Path] = field(default_factory=dict)

    def eos_ids(self, tokenizer: Any) -> set[int]:
        from serve.decoding import folder_eos_ids

        if (self.tokenizer_dir / "config.json").is_file():
            return folder_eos_ids(self.tokenizer_dir, tokenizer)
        return {int(tokenizer.eos_token_id)} if tokenizer.eos_token_id is not None else set()


def _cached(kind: str, source: Path, suffix: str) -> Path:
    from ragtune.derived_cache import entry
    from ragtune.hashing import folder_hash

    return entry("gguf", f"{kind}-{folder_hash(source)[:24]}-{suffix}.gguf")


def _made(out: Path) -> Path:
    from ragtune.derived_cache import prune

    prune(keep=out)
    return out


def folder_gguf(folder: Path, gguf_type: str) -> Path:
    """The folder's own GGUF, or its cached conversion (made now when missing)."""
    from ragtune.gguf_files import write_gguf

    own = folder / GGUF_IN_FOLDER
    if own.is_file():
        return own
    out = _cached("model", folder, gguf_type)
    return out if out.is_file() else _made(write_gguf(folder, out, gguf_type))


def adapter_gguf(adapter: Path, base_config_dir: Path) -> Path:
    from ragtune.gguf_files import write_lora_gguf

    if adapter.is_file():
        if adapter.suffix != ".gguf":
            raise RagtuneError(f"--lora {adapter}: pass a GGUF LoRA file or a LoRA adapter folder")
        return adapter
    if not (adapter / "adapter_config.json").is_file():
        raise RagtuneError(
            f"--lora {adapter}: no adapter_config.json there; pass the folder `ragtune tune generator` wrote "
            "(a LoRA adapter), or a GGUF LoRA file"
        )
    out = _cached("lora", adapter, "f16")
    return out if out.is_file() else _made(write_lora_gguf(adapter, base_config_dir, out))


def _same(a: str | Path, b: Path) -> bool:
    return Path(a).expanduser().resolve() == b.expanduser().resolve()


def _model_files(model: str | Path, gguf_type: str | None) -> LlamaModelFiles:
    gguf_type = gguf_type or DEFAULT_CONVERSION
    if models.is_default(model) or _same(model, models.default_generator_dir(materialise=False)):
        # named as the transformers backend names it: the folder's name when a folder was given
        name = models.DEFAULT_GENERATOR.name if models.is_default(model) else Path(model).name
        folder = models.default_generator_dir()
        gguf = models.gguf_path() if gguf_type == SHIPPED else folder_gguf(folder, gguf_type)
        return LlamaModelFiles(gguf, folder, name)
    if gguf_type == SHIPPED:
        raise RagtuneError(
            f"--gguf-type {SHIPPED} serves the default model's own GGUF; for {model} pick a type to convert to "
            f"({', '.join(GGUF_TYPES)}) or pass a .gguf file as --model"
        )
    path = Path(model)
    if path.is_file():
        if path.suffix != ".gguf":
            raise RagtuneError(f"--model {path}: the llama.cpp backend takes a .gguf file or a model folder")
        if (path.parent / "tokenizer.json").is_file():
            return LlamaModelFiles(path, path.parent, path.stem)
        return LlamaModelFiles(path, path.parent, path.stem, {"gguf_file": path.name})
    problem = models.model_dir_problem(path, "--model")
    if problem:
        raise RagtuneError(problem)
    return LlamaModelFiles(folder_gguf(path, gguf_type), path, path.name)


def resolve_files(
    model: str | Path, loras: dict[str, str | Path], gguf_type: str | None = None
) -> LlamaModelFiles:
    """`gguf_type`: what a folder is converted to (None: f16), or `shipped` for the default model's own file."""
    files = _model_files(model, gguf_type)
    files.tokenizer_kwargs.setdefault("local_files_only", True)
    for name, adapter in loras.items():
        if not name or name == files.name:
            raise RagtuneError(f"--lora {name}={adapter}: give each adapter a name other than the base's")
        if not (files.tokenizer_dir / "config.json").is_file():
            raise RagtuneError(
                "--lora needs the base model's folder (its config.json) beside its GGUF, to convert adapters"
            )
        files.loras[name] = adapter_gguf(Path(adapter), files.tokenizer_dir)
    return files


def parse_lora_specs(specs: tuple[str, ...] | list[str]) -> dict[str, str]:
    """`name=PATH` strings (the --lora option) as {name: path}; errors say what a spec looks like."""
    out: dict[str, str] = {}
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name.strip() or not path.strip():
            raise RagtuneError(
                f"--lora {spec!r}: write it as NAME=ADAPTER (a name the request's model picks)"
            )
        if name in out:
            raise RagtuneError(f"--lora names {name!r} twice")
        out[name.strip()] = path.strip()
    return out
