"""Every method trains a few steps on the tiny model and lowers the validation loss; results are complete."""

from __future__ import annotations

import json

import pytest

from ragtune.artifacts import read_artifact
from ragtune.errors import RagtuneError
from ragtune.prompt import PROMPT_FORMAT
from tuner import train_generator

# method -> (learning rate, files the output folder must hold)
METHODS = {
    "lora": (1e-2, "adapter_model.safetensors"),
    "dora": (1e-2, "adapter_model.safetensors"),
    "prefix": (1e-1, "adapter_model.safetensors"),
    "prompt": (3e-1, "adapter_model.safetensors"),
    "ptuning": (3e-2, "adapter_model.safetensors"),
    "full": (3e-3, "model.safetensors"),
}


@pytest.mark.parametrize("method", list(METHODS))
def test_method_lowers_loss(method, tiny_generator, world, tmp_path):
    lr, weights = METHODS[method]
    out = tmp_path / method
    r = train_generator(
        str(tiny_generator),
        str(world["qa"]),
        str(out),
        method=method,
        learning_rate=lr,
        max_steps=6,
        batch_size=4,
        val_fraction=0.25,
        eval_steps=6,
        logging_steps=1,
        seed=0,
    )
    assert r.steps == 6 and r.n_train + r.n_val == 32 and r.n_val == 8
    assert r.best_eval_loss < r.eval_loss_before, (r.eval_loss_before, r.eval_losses)
    assert 0 < r.trainable_params <= r.total_params and r.train_seconds > 0 and r.tokens_per_second > 0
    if method == "full":
        assert r.trainable_params == r.total_params
    else:
        assert r.trainable_pct < 50
    assert (out / weights).is_file() and (out / "tokenizer_config.json").is_file()
    art = read_artifact(out)
    assert art["method"] == method and art["prompt_format"] == PROMPT_FORMAT
    assert art["data_hash"].startswith("sha256:") and art["metrics"]["best_eval_loss"] == r.best_eval_loss
    assert art["base_model"] == str(tiny_generator.resolve())
    json.dumps(r.to_dict())  # the result is plain data


def test_lora_targets_default_by_architecture(tiny_generator, world, tmp_path):
    out = tmp_path / "lora"
    train_generator(str(tiny_generator), str(world["qa"]), str(out), max_steps=1, val_fraction=0)
    cfg = json.loads((out / "adapter_config.json").read_text())
    assert sorted(cfg["target_modules"]) == sorted(
        ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    )


def test_qlora_refuses_without_cuda_before_loading(tiny_generator, world, tmp_path, monkeypatch):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a GPU is visible: QLoRA would run")
    import transformers

    def no_load(*a, **k):  # loading weights is exactly what must not happen
        raise AssertionError("model weights were loaded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", no_load)
    with pytest.raises(RagtuneError, match="qlora needs a CUDA GPU"):
        train_generator(str(tiny_generator), str(world["qa"]), str(tmp_path / "q"), method="qlora")
    assert not (tmp_path / "q").exists()


def test_early_stopping_and_best_checkpoint(tiny_generator, world, tmp_path):
    # a huge learning rate makes validation loss rise after the first evaluations: training stops early
    # and the best (earliest) checkpoint is the one saved
    out = tmp_path / "es"
    r = train_generator(
        str(tiny_generator),
        str(world["qa"]),
        str(out),
        method="full",
        learning_rate=0.05,
        max_steps=40,
        batch_size=4,
        val_fraction=0.25,
        eval_steps=2,
        early_stopping_patience=2,
        scheduler="constant",
    )
    losses = [e["eval_loss"] for e in r.eval_losses]
    assert r.stopped_early and r.steps < 40
    assert r.best_eval_loss == min(losses)
    assert r.best_checkpoint.endswith(f"checkpoint-{r.eval_losses[losses.index(min(losses))]['step']}")


def test_validation_each_epoch(tiny_generator, world, tmp_path):
    r = train_generator(
        str(tiny_generator),
        str(world["qa"]),
        str(tmp_path / "ep"),
        epochs=2,
        batch_size=8,
        val_fraction=0.25,
        learning_rate=1e-2,
    )
    assert [round(e["epoch"], 3) for e in r.eval_losses] == [1.0, 2.0]
    assert r.steps == 2 * 3  # 24 training examples / batch 8 per epoch
    assert r.best_eval_loss == min(e["eval_loss"] for e in r.eval_losses)
