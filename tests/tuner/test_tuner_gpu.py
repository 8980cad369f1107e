"""GPU tier (off by default: `-m gpu` on a CUDA machine): bf16 LoRA and QLoRA train and export."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = [pytest.mark.gpu,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")]

from tuner import export_model, train_generator  # noqa: E402


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_bf16_and_qlora_train_and_export(method, tiny_generator, world, tmp_path):
    if method == "qlora":
        pytest.importorskip("bitsandbytes")
    r = train_generator(str(tiny_generator), str(world["qa"]), str(tmp_path / method), method=method, dtype="auto",
                        learning_rate=1e-2, max_steps=6, batch_size=4, val_fraction=0.25, eval_steps=6)
    assert r.best_eval_loss < r.eval_loss_before
    merged = export_model(r.out_dir, tmp_path / f"{method}-merged", dtype="bfloat16")
    assert (merged / "model.safetensors").is_file()
