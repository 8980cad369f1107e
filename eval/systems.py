"""Systems under test: what each one is (model, retrieval, retriever, index version, prompt) and parsing.

A system is either in-process (`model`: a Hugging Face folder, generated through
`serve.load_generator`; retrieval through `retriever.Retriever`) or black box (`url`: a running
`ragtune serve`, asked through the openai client). Names on the command line map to systems:
`base`, `fewshot`, `rag`, `ft`, `ft+rag`, and `<model>` / `<model>+rag` for any model named with
`--model NAME=DIR` (or `--url NAME=URL`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.models import GENERATOR_HELP, RETRIEVER_HELP, is_default, resolve_generator
from ragtune.retrieval import FUSIONS, KINDS, RETRIEVAL_HELP


@dataclass
class SystemSpec:
    """One system under test. Every field is recorded in results.json."""

    name: str = field(metadata={"help": "Name in the report (unique)."})
    model: str | None = field(
        default=None,
        metadata={
            "help": f"Generator, {GENERATOR_HELP}: loaded in-process; with `url`, only read for its hash and "
            "training figures."
        },
    )
    url: str | None = field(
        default=None, metadata={"help": "Base URL of a running `ragtune serve` (black box)."}
    )
    retrieval: bool = field(default=False, metadata={"help": "Retrieve passages and put them in the prompt."})
    top_k: int = field(default=4, metadata={"help": "Passages retrieved per question."})
    index: str | None = field(default=None, metadata={"help": "Index folder (in-process retrieval)."})
    index_version: str | None = field(
        default=None, metadata={"help": "Pin an index version (default CURRENT)."}
    )
    retriever: str | None = field(
        default=None, metadata={"help": f"Retriever, {RETRIEVER_HELP}; unset: the index's own."}
    )
    retrieval_mode: str | None = field(
        default=None, metadata={"help": f"Retrieval: {RETRIEVAL_HELP}; unset: the retriever's default."}
    )
    fusion: str = field(default="rrf", metadata={"help": "Hybrid fusion: rrf or weighted."})
    fusion_weight: float = field(
        default=0.5, metadata={"help": "Dense share of a weighted fusion, in [0, 1]."}
    )
    fewshot: int = field(default=0, metadata={"help": "k-shot examples from the training split."})
    fewshot_seed: int = field(default=0, metadata={"help": "Seed that draws the k-shot examples."})
    system_prompt: str | None = field(
        default=None, metadata={"help": "Override the prompt's system message."}
    )
    api_key: str | None = field(default=None, metadata={"help": "Bearer key of the server (url systems)."})
    max_tokens: int = field(default=32, metadata={"help": "Most tokens generated per answer."})
    base_model: str | None = field(
        default=None, metadata={"help": "The generator this one was tuned from (a folder or `default`)."}
    )

    def __post_init__(self):
        for attr in ("model", "base_model"):  # `default`: the embedded generator, materialised once
            if is_default(getattr(self, attr)):
                setattr(self, attr, str(resolve_generator(getattr(self, attr))))
        if not self.name or not isinstance(self.name, str):
            raise RagtuneError(f"system `name` must be a non-empty string, got {self.name!r}")
        if not self.model and not self.url:
            raise RagtuneError(
                f"system {self.name!r}: give `model` (a folder, in-process) or `url` (a running server)"
            )
        if self.top_k < 1 and self.retrieval:
            raise RagtuneError(f"system {self.name!r}: `top_k` must be ≥ 1 with retrieval, got {self.top_k}")
        _check_retrieval(self)
        if self.fewshot < 0:
            raise RagtuneError(f"system {self.name!r}: `fewshot` must be ≥ 0, got {self.fewshot}")
        if self.max_tokens < 1:
            raise RagtuneError(f"system {self.name!r}: `max_tokens` must be ≥ 1, got {self.max_tokens}")
        if self.retrieval and self.mode == "in-process" and not self.index:
            raise RagtuneError(
                f"system {self.name!r} retrieves in-process but names no index; pass --index DIR "
                f"(or `index:` in the systems YAML)"
            )
        if self.url:
            self.url = self.url.rstrip("/")

    @property
    def mode(self) -> str:
        return "http" if self.url else "in-process"

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        if d.get("api_key"):
            d["api_key"] = "***"  # never write a secret into a report
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any], defaults: Mapping[str, Any] | None = None) -> SystemSpec:
        names = {f.name for f in dataclasses.fields(cls)}
        merged = {**{k: v for k, v in (defaults or {}).items() if k in names}, **d}
        unknown = sorted(set(d) - names)
        if unknown:
            raise RagtuneError(
                f"system {d.get('name', '?')!r}: unknown field(s) {unknown}; known: {sorted(names)}"
            )
        return cls(**merged)


def _check_retrieval(spec: SystemSpec) -> None:
    if spec.retrieval_mode is not None and spec.retrieval_mode not in KINDS:
        raise RagtuneError(
            f"system {spec.name!r}: `retrieval_mode` must be one of {', '.join(KINDS)}, got {spec.retrieval_mode!r}"
        )
    if spec.fusion not in FUSIONS:
        raise RagtuneError(
            f"system {spec.name!r}: `fusion` must be one of {', '.join(FUSIONS)}, got {spec.fusion!r}"
        )
    if not 0.0 <= spec.fusion_weight <= 1.0:
        raise RagtuneError(
            f"system {spec.name!r}: `fusion_weight` must lie in [0, 1], got {spec.fusion_weight}"
        )


def as_spec(s: SystemSpec | Mapping[str, Any]) -> SystemSpec:
    return s if isinstance(s, SystemSpec) else SystemSpec.from_dict(s)


def parse_systems(
    names: str,
    *,
    models: Mapping[str, str] | None = None,
    urls: Mapping[str, str] | None = None,
    index: str | None = None,
    index_version: str | None = None,
    retriever: str | None = None,
    retrieval_mode: str | None = None,
    fusion: str = "rrf",
    fusion_weight: float = 0.5,
    top_k: int = 4,
    fewshot: int = 3,
    seed: int = 0,
    max_tokens: int = 32,
    api_key: str | None = None,
) -> list[SystemSpec]:
    """`base,fewshot,rag,ft,ft+rag` → SystemSpecs. `models`/`urls` map model names (base, ft, ...) to
    folders/servers; `rag` is `base+rag`; `fewshot` is the base model with `fewshot` examples."""
    models, urls = dict(models or {}), dict(urls or {})
    out: list[SystemSpec] = []
    for raw in [n.strip() for n in names.split(",") if n.strip()]:
        token = "base+rag" if raw == "rag" else raw
        k = 0
        if token == "fewshot" or token.startswith("fewshot+"):
            k, token = fewshot, "base" + token[len("fewshot") :]
        model_name, _, suffix = token.partition("+")
        if suffix not in ("", "rag"):
            raise RagtuneError(
                f"system {raw!r}: expected NAME or NAME+rag (e.g. ft+rag), got suffix {suffix!r}"
            )
        if model_name not in models and model_name not in urls:
            known = sorted(set(models) | set(urls))
            raise RagtuneError(
                f"system {raw!r} needs a model named {model_name!r}; pass --{model_name} DIR or "
                f"--model {model_name}=DIR (or --url {model_name}=URL); known: {known}"
            )
        out.append(
            SystemSpec(
                name=raw,
                model=models.get(model_name),
                url=None if model_name in models else urls[model_name],
                retrieval=suffix == "rag",
                top_k=top_k,
                index=index,
                index_version=index_version,
                retriever=retriever,
                retrieval_mode=retrieval_mode,
                fusion=fusion,
                fusion_weight=fusion_weight,
                fewshot=k,
                fewshot_seed=seed,
                max_tokens=max_tokens,
                api_key=api_key,
                base_model=models.get("base") if model_name != "base" else None,
            )
        )
    if not out:
        raise RagtuneError("--systems is empty; name at least one, e.g. --systems base,rag,ft,ft+rag")
    _unique(out)
    return out


def load_systems_yaml(path: str | Path) -> list[SystemSpec]:
    """Systems from YAML: top-level defaults (index, retriever, top_k, ...) and a `systems:` list."""
    from ragtune.settings import read_yaml_mapping

    p = Path(path)
    doc = read_yaml_mapping(p, "systems file")
    if not isinstance(doc.get("systems"), list) or not doc["systems"]:
        raise RagtuneError(f"{p}: expected a mapping with a non-empty `systems:` list")
    defaults = {k: v for k, v in doc.items() if k != "systems"}
    base = p.parent
    specs = []
    for i, s in enumerate(doc["systems"]):
        if not isinstance(s, dict):
            raise RagtuneError(f"{p}: systems[{i}] must be a mapping, got {s!r}")
        spec = SystemSpec.from_dict(s, defaults)
        for attr in ("model", "index", "retriever", "base_model"):  # relative paths are relative to the YAML
            v = getattr(spec, attr)
            if v and not Path(v).is_absolute() and (base / v).exists():
                setattr(spec, attr, str(base / v))
        specs.append(spec)
    _unique(specs)
    return specs


def _unique(specs: list[SystemSpec]) -> None:
    seen: set[str] = set()
    for s in specs:
        if s.name in seen:
            raise RagtuneError(f"system name {s.name!r} is given twice; names must be unique")
        seen.add(s.name)
