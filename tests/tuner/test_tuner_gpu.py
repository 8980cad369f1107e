"""GPU tier (off by default: `-m gpu` on a CUDA machine): bf16 LoRA and QLoRA train and export."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]

from tuner import export_model, train_generator


@pytest.mark.parametrize("method", ["lora", "qlora"])
def test_bf16_and_qlora_train_and_export(method, tiny_generator, world, tmp_path):
    if method == "qlora":
        pytest.importorskip("bitsandbytes")
    r = train_generator(
        str(tiny_generator),
        str(world["qa"]),
        str(tmp_path / method),
        method=method,
        dtype="auto",
        learning_rate=1e-2,
        max_steps=6,
        batch_size=4,
        val_fraction=0.25,
        eval_steps=6,
    )
    assert r.best_eval_loss < r.eval_loss_before
    merged = export_model(r.out_dir, tmp_path / f"{method}-merged", dtype="bfloat16")
    assert (merged / "model.safetensors").is_file()


def test_qlora_on_the_default_model(world, tmp_path):
    """QLoRA (4-bit NF4 base) on the real default generator: trains, saves, reloads 4-bit, exports, parity."""
    import math

    pytest.importorskip("bitsandbytes")
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, BitsAndBytesConfig

    from ragtune.models import resolve_generator
    from tuner.prompt_check import prompt_parity

    base = resolve_generator("default")
    r = train_generator(
        str(base),
        str(world["qa"]),
        str(tmp_path / "qlora"),
        method="qlora",
        dtype="auto",
        max_steps=2,
        batch_size=4,
        val_fraction=0,
        max_length=128,
        logging_steps=1,
    )
    losses = [h["loss"] for h in r.train_losses]
    assert r.steps == 2 and len(losses) == 2 and all(map(math.isfinite, losses))
    quant = BitsAndBytesConfig(
        load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_compute_dtype=torch.bfloat16
    )
    model = PeftModel.from_pretrained(
        AutoModelForCausalLM.from_pretrained(base, quantization_config=quant, device_map={"": 0}), r.out_dir
    ).eval()
    enc = AutoTokenizer.from_pretrained(r.out_dir)(
        "Question: What is the capital of France?", return_tensors="pt"
    )
    with torch.no_grad():
        assert torch.isfinite(model(**enc.to(0)).logits).all()
    merged = export_model(r.out_dir, tmp_path / "merged", dtype="bfloat16")
    assert (merged / "model.safetensors").is_file() and prompt_parity(merged).ok
