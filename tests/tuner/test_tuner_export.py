"""Export: a merged plain HF folder whose greedy output and logits match the adapter's; check-prompt."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli

from ragtune.artifacts import read_artifact
from ragtune.errors import RagtuneError
from ragtune.prompt import PROMPT_FORMAT, build_messages
from tuner import export_model, train_generator
from tuner.prompt_check import prompt_parity


def _prompt_ids(tok):
    msgs = build_messages("Where does Mara Quill live?", ["Mara Quill lives in Brightwater."])
    return tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)


@pytest.mark.parametrize("method, via_cli", [("lora", True), ("dora", False), ("full", False)])
def test_export_parity(method, via_cli, tiny_generator, world, tmp_path):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    adapter = tmp_path / "adapter"
    train_generator(
        str(tiny_generator),
        str(world["qa"]),
        str(adapter),
        method=method,
        max_steps=4,
        learning_rate=5e-2 if method != "full" else 3e-3,
        batch_size=8,
        val_fraction=0,
    )
    merged = tmp_path / "merged"
    if via_cli:
        run_cli("export", "--adapter", str(adapter), "--out", str(merged))
    else:
        export_model(adapter, merged)
    for name in (
        "model.safetensors",
        "config.json",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "ragtune.json",
    ):
        assert (merged / name).is_file(), name
    assert not (merged / "adapter_config.json").exists()
    art = read_artifact(merged)
    assert art["kind"] == "merged" and art["method"] == method and art["prompt_format"] == PROMPT_FORMAT
    assert art["data_hash"] == read_artifact(adapter)["data_hash"] and "best_eval_loss" in art["metrics"]
    # the dtype `auto` resolved to on this machine, kept from training through the merge
    assert (
        art["train_dtype"]
        == read_artifact(adapter)["train_dtype"]
        in ("float32", "bf16-autocast", "bfloat16")
    )
    # recorded, but may be 0.0: a tiny model's merge can fit in memory the allocator already holds from
    # earlier tests in this process (seen once in CI after the default-model tests)
    assert art["export"]["peak_rss_mb"] >= 0 and art["export"]["model_mb"] > 0

    tok = AutoTokenizer.from_pretrained(merged)
    gc = GenerationConfig.from_pretrained(merged)
    eos = gc.eos_token_id if isinstance(gc.eos_token_id, list) else [gc.eos_token_id]
    assert tok.convert_tokens_to_ids("<|end|>") in eos and gc.pad_token_id == tok.pad_token_id

    plain = AutoModelForCausalLM.from_pretrained(merged).eval()
    if method == "full":
        ref = AutoModelForCausalLM.from_pretrained(adapter).eval()
    else:
        ref = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(tiny_generator), adapter).eval()
    enc = _prompt_ids(tok)
    with torch.no_grad():
        a, b = ref(**enc).logits, plain(**enc).logits
        base_logits = AutoModelForCausalLM.from_pretrained(tiny_generator)(**enc).logits
    assert (a - b).abs().max().item() < 1e-4
    assert (a - base_logits).abs().max().item() > 1e-3  # training changed the model: parity is not vacuous
    kw = {"max_new_tokens": 12, "do_sample": False, "pad_token_id": tok.pad_token_id}
    with torch.no_grad():
        assert ref.generate(**enc, **kw).tolist() == plain.generate(**enc, **kw).tolist()


def test_export_refuses_prompt_adapters_and_bad_folders(tiny_generator, world, tmp_path):
    adapter = tmp_path / "prompt"
    train_generator(
        str(tiny_generator), str(world["qa"]), str(adapter), method="prompt", max_steps=1, val_fraction=0
    )
    with pytest.raises(RagtuneError, match="cannot be merged"):
        export_model(adapter, tmp_path / "m")
    with pytest.raises(RagtuneError, match="does not exist"):
        export_model(tmp_path / "missing", tmp_path / "m")
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("x")
    with pytest.raises(RagtuneError, match="not empty"):
        export_model(adapter, tmp_path / "taken")


def test_check_prompt_cli(tiny_generator, tmp_path):
    ok = prompt_parity(tiny_generator)
    assert ok.ok and "[ok] rag prompt" in ok.text() and "[ok] closed-book prompt" in ok.text()
    # a model trained with another prompt format is refused with exit status 2
    bad = tmp_path / "bad"
    bad.mkdir()
    for f in tiny_generator.iterdir():
        (bad / f.name).write_bytes(f.read_bytes())
    (bad / "ragtune.json").write_text(json.dumps({"prompt_format": "other-v0"}))
    assert not prompt_parity(bad).ok
    (bad / "ragtune.json").write_text(
        json.dumps({"prompt_format": PROMPT_FORMAT, "user_template": "Q: {question}"})
    )
    assert "user_template" in prompt_parity(bad).problem
    (bad / "ragtune.json").write_text(json.dumps({"prompt_format": "other-v0"}))
    proc = run_cli("check-prompt", str(bad), check=False)
    assert (
        proc.returncode == 2
        and "[FAIL] prompt_format" in proc.stdout
        and "error: prompt parity failed" in proc.stderr
    )
    assert "[ok] rag prompt" in proc.stdout
