"""The demo's two presets, sized to the measured LoRA speed of the default generator on 2 CPU cores.

full: ≤ 15 min from a fresh clone (install and the one-time conversion included); quick: ≤ 5 min, the
same steps on a smaller world (it runs in the test suite). The generator is the embedded
SmolLM2-135M-Instruct; the tiny from-scratch builder (`ragtune base build`) is not part of the demo.
"""

from __future__ import annotations

from dataclasses import dataclass, field


def _f(default, help: str):
    return field(default=default, metadata={"help": help})


@dataclass
class DemoConfig:
    name: str = "full"
    seed: int = _f(0, "Seed for the world, training and evaluation.")
    generator: str = _f("default", "Generator every system starts from: a folder or `default`.")
    n_people: int = _f(40, "People in the target world (4 facts each).")
    n_test: int = _f(80, "Test questions (one per sampled fact, in a wording never trained on).")
    n_validation: int = _f(40, "Validation questions (written, not used for training).")
    update_fraction: float = _f(0.25, "Share of people with a changed fact after the refresh.")
    top_k: int = _f(3, "Passages retrieved per question (and per RAFT example).")
    retriever_questions: int = _f(320, "Training questions sampled for the retriever (LoRA).")
    lora_r: int = _f(16, "LoRA rank (all linear layers; the lifecycle trains LoRA at batch 8).")
    closed_book_wordings: int = _f(3, "Training wordings per fact for closed-book fine-tuning (1-3).")
    generator_epochs: float = _f(1, "Closed-book fine-tuning epochs (over every training wording).")
    generator_lr: float = _f(1e-3, "Closed-book learning rate (facts must be memorised).")
    raft_wordings: int = _f(1, "Training wordings per fact for RAFT (each example holds top_k passages).")
    raft_epochs: float = _f(1, "RAFT fine-tuning epochs.")
    raft_lr: float = _f(1e-3, "RAFT learning rate (few steps: high for LoRA).")
    fewshot: int = _f(3, "Examples in the few-shot baseline's prompt.")
    max_tokens: int = _f(16, "Most tokens per answer (a short answer needs under 10; rambling is cut).")
    cpu_threads: int | None = _f(None, "torch CPU threads in this process (None: torch's default).")


FULL = DemoConfig()

QUICK = DemoConfig(
    name="quick",
    n_people=16,
    n_test=32,
    n_validation=16,
    retriever_questions=64,
    closed_book_wordings=2,
)

PRESETS = {"full": FULL, "quick": QUICK}
