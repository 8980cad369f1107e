"""RunConfig: every setting of `ragtune run`, with its help string and validation."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.retrieval import DEFAULT_KIND, KINDS

# The systems a run can compare. `raft` is the generator fine-tuned RAFT-style (with retrieved passages and
# distractors), `ft` the one fine-tuned closed-book; `fewshot` puts k training pairs before the question.
KNOWN_SYSTEMS = ("base", "fewshot", "rag", "fewshot+rag", "ft", "ft+rag", "raft", "raft+rag")
DEFAULT_SYSTEMS = "base,fewshot,rag,fewshot+rag,raft+rag"
MIN_DOCUMENTS = 5  # train, validation and test each need documents of their own (split by document)


def _f(default: Any, help_: str) -> Any:
    return field(default=default, metadata={"help": help_})


@dataclass
class TuneSettings:
    """One fine-tune kind's settings where they differ from the run's (the demo's world sets them)."""

    train: str | None = _f(None, "QA file to train on instead of the run's train split.")
    epochs: float | None = _f(None, "Epochs, fixed, instead of the budget's (3 or fewer).")
    learning_rate: float | None = _f(None, "Learning rate instead of --learning-rate.")

    def __post_init__(self) -> None:
        for name in ("epochs", "learning_rate"):
            v = getattr(self, name)
            if v is not None and v <= 0:
                raise RagtuneError(f"`{name}` should be positive but the value passed is {v}")


@dataclass
class RunConfig:
    docs: str = _f("", "Folder of your documents (.txt .md .html .pdf .jsonl), ingested and refreshed.")
    out: str = _f("", "Run folder: index, QA splits, adapters, models, eval, report, winner.json.")
    base: str = _f(
        "default", "Generator every system starts from: `default` or a local HF chat model folder."
    )
    synth_generator: str = _f(
        "default",
        "Who writes the QA pairs: `default`, a local folder, or an OpenAI-compatible URL "
        "(http://host:8000/v1) so a bigger model elsewhere can write them.",
    )
    synth_api_key: str | None = _f(None, "Bearer key of the --synth-generator URL (never stored).")
    systems: str = _f(DEFAULT_SYSTEMS, f"Comma list of systems to compare, from {', '.join(KNOWN_SYSTEMS)}.")
    qa: str | None = _f(
        None,
        "Your own questions (.jsonl rows with `question` and `answer`): every system is scored on them "
        "too, and they decide the winner.",
    )
    budget_minutes: float = _f(
        30.0, "Time budget: sizes the synthetic sample, the training steps and the test sample."
    )
    tune_retriever: bool = _f(
        True, "Fine-tune the retriever on the synthetic pairs; kept only where it wins on validation."
    )
    read_back: bool = _f(True, "Keep a synthetic pair only when the generator reads its answer back.")
    top_k: int = _f(3, "Passages retrieved per question (and per RAFT example).")
    retrieval_mode: str = _f(
        DEFAULT_KIND, "How every retrieval system searches: dense, bm25 or hybrid (BM25 and dense, fused)."
    )
    fewshot: int = _f(3, "Training pairs shown before the question by the few-shot systems.")
    max_tokens: int = _f(32, "Most tokens per answer during evaluation.")
    lora_r: int = _f(16, "LoRA rank of the generator fine-tunes (all linear layers).")
    learning_rate: float = _f(1e-3, "Learning rate of the generator fine-tunes (LoRA, few steps).")
    metric: str = _f(
        "contains",
        "What the verdict decides on: contains (the gold answer in the reply, guarded against lists of "
        "guesses; eval's default, fair to a model that answers in sentences), f1 or em.",
    )
    seed: int = _f(0, "Seed of sampling, splits, training and evaluation: same seed, same run.")
    feedback_db: str | None = _f(
        None,
        "A `serve --feedback-db` file: its corrections join the training pairs of every generator fine-tune "
        "(as `ragtune feedback export` writes them, with their passages).",
    )
    force: bool = _f(False, "Start over when --out holds a run made from other inputs.")
    qa_dir: str | None = _f(
        None,
        "Folder of given QA splits (train.jsonl, validation.jsonl, test.jsonl) used instead of writing "
        "questions from the chunks (the demo's world; no command-line flag).",
    )
    retriever_pairs: int | None = _f(
        None,
        "At most this many training pairs for the retriever LoRA (a seeded sample; no flag: the demo's).",
    )
    tuning: dict[str, TuneSettings] = field(
        default_factory=dict,
        metadata={
            "help": "Per fine-tune kind (ft, raft): its own training file, epochs, learning rate (no flag)."
        },
    )

    def __post_init__(self) -> None:
        if not self.docs:
            raise RagtuneError("DOCS is required: the folder of your documents")
        if not self.out:
            raise RagtuneError("--out RUN is required: the folder the run writes into")
        if self.budget_minutes <= 0:
            raise RagtuneError(
                f"--budget-minutes should be positive but the value passed is {self.budget_minutes}"
            )
        for name in ("top_k", "max_tokens", "lora_r"):
            if getattr(self, name) < 1:
                raise RagtuneError(
                    f"--{name.replace('_', '-')} should be a positive integer but the value passed is "
                    f"{getattr(self, name)}"
                )
        if self.retrieval_mode not in KINDS:
            raise RagtuneError(
                f"--retrieval must be one of {', '.join(KINDS)} but the value passed is {self.retrieval_mode!r}"
            )
        if self.metric not in ("contains", "f1", "em", "exact_match"):
            raise RagtuneError(
                f"--metric should be contains, f1 or em but the value passed is {self.metric!r}"
            )
        if self.retriever_pairs is not None and self.retriever_pairs < 1:
            raise RagtuneError(
                f"`retriever_pairs` should be a positive integer but the value passed is {self.retriever_pairs}"
            )
        if self.fewshot < 0:
            raise RagtuneError(f"--fewshot should be >= 0 but the value passed is {self.fewshot}")
        self.tuning = {
            k: v if isinstance(v, TuneSettings) else TuneSettings(**v) for k, v in (self.tuning or {}).items()
        }
        if set(self.tuning) - {"ft", "raft"}:
            raise RagtuneError(
                f"`tuning` keys should be ft or raft but the value passed has {sorted(self.tuning)}"
            )
        names = self.system_names()
        unknown = [s for s in names if s not in KNOWN_SYSTEMS]
        if unknown or not names:
            raise RagtuneError(
                f"--systems: unknown system(s) {unknown or [self.systems]}; choose from {', '.join(KNOWN_SYSTEMS)}"
            )

    def system_names(self) -> list[str]:
        return list(dict.fromkeys(s.strip() for s in self.systems.split(",") if s.strip()))

    def trains(self, kind: str) -> bool:
        """Does any chosen system need the `kind` ("ft" or "raft") fine-tune?"""
        return any(s.split("+")[0] == kind for s in self.system_names())

    def tune(self, kind: str) -> TuneSettings:
        return self.tuning.get(kind) or TuneSettings()

    def public(self) -> dict[str, Any]:
        """The settings as recorded in the run (no key; `force` is not a setting of the result)."""
        d = asdict(self)
        d.pop("force")
        d["synth_api_key"] = "set" if self.synth_api_key else None
        return d


def config_help() -> dict[str, str]:
    return {f.name: f.metadata["help"] for f in fields(RunConfig)}
