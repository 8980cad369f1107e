"""tuner stage: generator fine-tuning (PEFT or full, closed-book or RAFT), merge/export, training data.

Importing this package loads neither torch nor transformers; the heavy imports happen inside the
functions. Retriever fine-tuning (`train_retriever`) and the tiny base model live in their own modules.
"""

from __future__ import annotations

from typing import Any

from tuner.builders import InstructionTemplate, build_raft_examples, build_sft_examples
from tuner.gen_config import (
    METHODS,
    MODES,
    PEFT_LORA,
    PEFT_PROMPT,
    FullGeneratorConfig,
    GeneratorConfig,
    LoraGeneratorConfig,
    PromptGeneratorConfig,
)
from tuner.gen_data import ChatExample, TrainExample, load_generator_data, mix_tasks, split_by_document


def train_generator(*args: Any, **kwargs: Any):
    """See tuner.gen_train.train_generator."""
    from tuner.gen_train import train_generator as _train

    return _train(*args, **kwargs)


def export_model(*args: Any, **kwargs: Any):
    """See tuner.export.export_model."""
    from tuner.export import export_model as _export

    return _export(*args, **kwargs)


def train_retriever(*args: Any, **kwargs: Any):
    """See tuner.retriever_train.train_retriever (the lead's module)."""
    from tuner.retriever_train import train_retriever as _train

    return _train(*args, **kwargs)


__all__ = [
    "METHODS",
    "MODES",
    "PEFT_LORA",
    "PEFT_PROMPT",
    "ChatExample",
    "FullGeneratorConfig",
    "GeneratorConfig",
    "InstructionTemplate",
    "LoraGeneratorConfig",
    "PromptGeneratorConfig",
    "TrainExample",
    "build_raft_examples",
    "build_sft_examples",
    "export_model",
    "load_generator_data",
    "mix_tasks",
    "split_by_document",
    "train_generator",
    "train_retriever",
]
