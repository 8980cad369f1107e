"""Sequential fine-tuning: continue an existing adapter, or start a new run from a merged model."""

from __future__ import annotations

import json

import pytest

from ragtune.artifacts import read_artifact
from tuner import export_model, train_generator

HP = {
    "learning_rate": 1e-2,
    "max_steps": 4,
    "batch_size": 4,
    "val_fraction": 0.25,
    "eval_steps": 4,
    "seed": 0,
    "dtype": "float32",  # validation losses compared to 1e-4 across runs: no CPU bf16 autocast (auto's choice)
}


def test_continue_adapter_and_train_on_merged(tiny_generator, world, tmp_path):
    first = train_generator(str(tiny_generator), str(world["qa"]), str(tmp_path / "a1"), method="dora", **HP)
    # continue the adapter: base and method come from it; training starts where it ended
    second = train_generator(None, str(world["qa"]), str(tmp_path / "a2"), adapter=first.out_dir, **HP)
    assert second.method == "dora" and second.base == first.base
    assert second.eval_loss_before == pytest.approx(first.best_eval_loss, abs=1e-4)
    assert second.train_losses[0]["loss"] < first.train_losses[0]["loss"]  # it did not start from scratch
    assert read_artifact(tmp_path / "a2")["parent_adapter"] == first.out_dir
    assert json.loads((tmp_path / "a2" / "adapter_config.json").read_text())["use_dora"] is True
    # a merged model is an ordinary base: a new LoRA on top starts from the merged weights
    merged = export_model(first.out_dir, tmp_path / "m1")
    third = train_generator(str(merged), str(world["qa"]), str(tmp_path / "a3"), method="lora", **HP)
    assert third.eval_loss_before == pytest.approx(first.best_eval_loss, abs=1e-4)
    assert third.base == str(merged)
