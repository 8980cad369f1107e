"""--max-batch-tokens: a step's examples split into accumulated micro-batches, the step itself unchanged."""

from __future__ import annotations

import json

import pytest

from tuner import train_generator
from tuner.runtime import micro_batches


@pytest.mark.parametrize(
    "batch, accum, longest, max_tokens, want",
    [
        (8, 1, 1100, None, (8, 1)),  # off
        (8, 1, 380, 4096, (8, 1)),  # the demo's RAFT examples: 3,040 tokens fit
        (8, 1, 1100, 4096, (2, 4)),  # Wikipedia-sized passages: 3 would fit, but 3 does not divide 8
        (8, 2, 1100, 4096, (2, 8)),  # accumulation the user asked for is kept: 16 examples a step
        (8, 1, 5000, 4096, (1, 8)),  # one example over the limit: one at a time
        (6, 1, 1000, 3000, (3, 2)),
        (7, 1, 1000, 3000, (1, 7)),  # a prime batch size splits only into ones
    ],
)
def test_micro_batches_keep_the_examples_per_step(batch, accum, longest, max_tokens, want):
    micro, steps = micro_batches(batch, accum, longest, max_tokens)
    assert (micro, steps) == want and micro * steps == batch * accum


def test_split_steps_train_as_the_whole_batch(tiny_generator, world, tmp_path):
    """fp32, the same 4 examples a step: one forward of 4, or 4 forwards of 1 with their gradients summed."""
    hp = {"method": "lora", "learning_rate": 1e-2, "max_steps": 3, "batch_size": 4, "val_fraction": 0}
    hp |= {
        "logging_steps": 1,
        "seed": 0,
        "dtype": "float32",
        "lora_dropout": 0.0,
    }  # dropout masks differ by split
    runs = {
        name: train_generator(str(tiny_generator), str(world["qa"]), str(tmp_path / name), **hp, **extra)
        for name, extra in (("whole", {}), ("split", {"max_batch_tokens": 8}))
    }
    state = json.loads(
        (tmp_path / "split" / "checkpoints" / "checkpoint-3" / "trainer_state.json").read_text()
    )
    assert state["train_batch_size"] == 1  # per forward: the longest example is over 8 tokens
    whole, split = ([h["loss"] for h in runs[n].train_losses] for n in ("whole", "split"))
    assert runs["whole"].steps == runs["split"].steps == 3 and len(whole) == len(split) == 3
    assert split == pytest.approx(whole, abs=1e-4)  # token-weighted as one batch: the same steps
    assert whole[-1] < whole[0]
