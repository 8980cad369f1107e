"""The demo's two presets: full (≤ 15 min on 2 CPU cores) and quick (≤ 4 min, runs in the test suite).

Both run the same steps end to end; quick has a smaller world, a smaller base model and fewer steps.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from tuner.base_build import BaseTrainConfig
from tuner.base_model import TinyModelConfig


@dataclass
class GeneralCorpusConfig:
    n_people: int = field(default=3000, metadata={"help": "People in the general world (base model data)."})
    n_heldout: int = field(default=200, metadata={"help": "Unseen general people for the copy-from-context check."})
    n_reading: int = field(default=8000, metadata={"help": "RAG-format reading examples."})
    n_closed_book: int = field(default=1500, metadata={"help": "Closed-book examples about well-known people."})
    max_passages: int = field(default=3, metadata={"help": "Most passages in one reading example."})
    max_questions: int = field(default=4, metadata={"help": "Most questions asked about one set of passages."})


@dataclass
class DemoConfig:
    name: str = "full"
    seed: int = field(default=0, metadata={"help": "Seed for the world, training and evaluation."})
    n_people: int = field(default=120, metadata={"help": "People in the target world."})
    n_test: int = field(default=240, metadata={"help": "Test questions (one per sampled fact)."})
    n_validation: int = field(default=80, metadata={"help": "Validation questions."})
    update_fraction: float = field(default=0.2, metadata={"help": "Share of people with a changed fact."})
    top_k: int = field(default=3, metadata={"help": "Passages retrieved per question."})
    general: GeneralCorpusConfig = field(default_factory=GeneralCorpusConfig)
    base_model: TinyModelConfig = field(default_factory=TinyModelConfig)
    base_train: BaseTrainConfig = field(default_factory=lambda: BaseTrainConfig(steps=500, batch_size=16, lr=3e-3,
                                                                                 warmup=50))
    retriever_epochs: int = field(default=1, metadata={"help": "Retriever fine-tuning epochs."})
    retriever_questions: int = field(default=480, metadata={"help": "Training questions sampled for the retriever."})
    retriever_batch_size: int = field(default=32, metadata={"help": "Retriever batch (in-batch negatives)."})
    generator_method: str = field(default="lora", metadata={"help": "PEFT method for the generator."})
    generator_epochs: float = field(default=6, metadata={"help": "Generator fine-tuning epochs (closed-book)."})
    raft_epochs: float = field(default=2, metadata={"help": "Generator fine-tuning epochs (RAFT)."})
    generator_lr: float = field(default=3e-3, metadata={"help": "Generator learning rate."})
    fewshot: int = field(default=3, metadata={"help": "Examples in the few-shot baseline's prompt."})
    cpu_threads: int | None = field(default=None, metadata={"help": "torch CPU threads for training (None: torch's default)."})
    n_general_eval: int = field(default=200, metadata={"help": "General held-out questions for forgetting."})


FULL = DemoConfig()

QUICK = DemoConfig(
    name="quick",
    n_people=40,
    n_test=60,
    n_validation=40,
    general=GeneralCorpusConfig(n_people=1500, n_heldout=100, n_reading=3000, n_closed_book=600),
    base_train=BaseTrainConfig(steps=200, batch_size=16, lr=3e-3, warmup=20),
    generator_epochs=3,
    raft_epochs=1,
    n_general_eval=50,
    retriever_questions=64,
)

PRESETS = {"full": FULL, "quick": QUICK}
