"""Lifecycle fixtures: a tiny real generator whose context holds few-shot turns and retrieved passages."""

from __future__ import annotations

from pathlib import Path

import pytest
from lifecycle_helpers import town_text


@pytest.fixture(scope="session")
def run_generator(tmp_path_factory) -> Path:
    """A real, untrained 2-layer 64-wide Llama with a BPE tokenizer, chat template and a 4k context."""
    from tuner.base_model import TinyModelConfig, build_untrained

    cfg = TinyModelConfig(
        vocab_size=400, hidden_size=64, num_layers=2, num_heads=4, intermediate_size=128,
        max_position_embeddings=4096,
    )  # fmt: skip
    texts = [town_text(i) for i in range(12)] * 4
    return build_untrained(texts, tmp_path_factory.mktemp("run_generator"), cfg, seed=0)
