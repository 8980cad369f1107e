"""Every method on the real default generator (SmolLM2-135M-Instruct, ChatML): two steps train, save,
reload and (where mergeable) export; the loss falls on the answer tokens only, through its own template.

Four QA rows in one batch of four: each step sees all of them, so the first step's loss is the base
model's loss on the same tokens for LoRA/DoRA/full (they start as the base) and within a sane bound
of it for the prompt methods (a prefix that wrecked the model at initialisation would be caught), and
the second step's loss, on the same batch, is lower (the default learning rate does not blow it up).
"""

from __future__ import annotations

import math

import pytest
from cli_helpers import run_cli
from tuner_world import write_jsonl

from ragtune.artifacts import read_artifact
from ragtune.models import resolve_generator
from ragtune.prompt import build_messages
from ragtune.records import qa_from_dict
from tuner import export_model, methods, train_generator
from tuner.builders import build_sft_examples
from tuner.formatting import IGNORE, PadCollator, encode_all, serving_prompt_ids
from tuner.prompt_check import prompt_parity

QA = [
    ("What is the capital of France?", "Paris"),
    ("Who wrote Romeo and Juliet?", "William Shakespeare"),
    ("How many days are in a week?", "Seven"),
    ("What is the largest planet in the Solar System?", "Jupiter"),
]
MAX_LENGTH = 128
# method -> (mergeable, starts as the base model); learning rates are the method defaults (gen_config)
METHODS = {
    "lora": (True, True),
    "dora": (True, True),
    "full": (True, True),
    "prefix": (False, False),
    "prompt": (False, False),
    "ptuning": (False, False),
}
TOL = 5e-4  # on logits up to ~30 through 30 float32 layers (merged vs adapter differ by ~1e-4)
START_SLACK = 1.0  # the prompt methods' first loss may exceed the base loss by this much (random prefix: +7)


@pytest.fixture(scope="module")
def default_dir():
    return resolve_generator("default")


@pytest.fixture(scope="module")
def tok(default_dir):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(default_dir)


@pytest.fixture(scope="module")
def qa_file(module_tmp):
    return write_jsonl(module_tmp("default_qa") / "qa.jsonl", _qa_rows())


@pytest.fixture(scope="module")
def prompt(tok):
    msgs = build_messages("What is the capital of Italy?", ["Rome is the capital of Italy."])
    return tok.apply_chat_template(msgs, add_generation_prompt=True, return_tensors="pt", return_dict=True)


def _load(folder):
    import torch
    from transformers import AutoModelForCausalLM

    return AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()


def _logits(model, enc):
    """Logits at the prompt's positions (prompt and p-tuning put their virtual tokens in front)."""
    import torch

    with torch.no_grad():
        return model.eval()(**enc).logits[:, -enc["input_ids"].shape[1] :]


@pytest.fixture(scope="module")
def base(default_dir, tok, prompt):
    """(loss of the untrained model on the whole training batch, its logits on the prompt)."""
    import torch

    model = _load(default_dir)
    with torch.no_grad():
        loss = model(**PadCollator(tok.pad_token_id)(_encoded(tok))).loss.item()
    return loss, _logits(model, prompt)


def _qa_rows():
    return [{"id": f"q{i}", "question": q, "answer": a} for i, (q, a) in enumerate(QA)]


def _encoded(tok):
    """The training rows exactly as train_generator builds and tokenises them."""
    return encode_all(tok, build_sft_examples([qa_from_dict(r) for r in _qa_rows()]), MAX_LENGTH, "qa")


def test_loss_only_on_the_answer_through_the_chatml_template(tok):
    rows = _encoded(tok)
    msgs = build_messages(QA[1][0], None)
    for row, (_, answer) in zip(rows, QA):
        ids, labels = row["input_ids"], row["labels"]
        kept = [t for t in labels if t != IGNORE]
        assert tok.decode(kept) == f"{answer}<|im_end|>"  # the answer and its turn end, not the "\n" after it
        first = next(i for i, t in enumerate(labels) if t != IGNORE)
        assert labels[first:] == ids[first : len(ids) - 1] + [
            IGNORE
        ]  # one contiguous span, then the layout "\n"
        assert tok.decode(ids[:first]).endswith("<|im_start|>assistant\n") and tok.decode(ids[-1:]) == "\n"
    # everything before the answer is exactly what the server sends for the same question
    ids = rows[1]["input_ids"]
    first = next(i for i, t in enumerate(rows[1]["labels"]) if t != IGNORE)
    assert ids[:first] == serving_prompt_ids(tok, msgs)
    # ragtune's system prompt replaces the template's default one ("You are a helpful AI assistant named SmolLM")
    assert tok.decode(ids[:first]).startswith(
        f"<|im_start|>system\n{msgs[0]['content']}<|im_end|>\n<|im_start|>user"
    )


@pytest.mark.parametrize("method", list(METHODS))
def test_method_on_the_default_model(method, default_dir, qa_file, base, prompt, tmp_path, monkeypatch):
    mergeable, starts_as_base = METHODS[method]
    base_loss, base_logits = base
    trained = {}
    wrap = methods.wrap_model

    def keep_model(*a, **k):  # the very model the Trainer trains, to compare with what was saved
        trained["model"] = wrap(*a, **k)
        return trained["model"]

    monkeypatch.setattr(methods, "wrap_model", keep_model)
    out = tmp_path / method
    r = train_generator(
        str(default_dir),
        str(qa_file),
        str(out),
        method=method,
        max_steps=2,
        batch_size=4,
        val_fraction=0,
        max_length=MAX_LENGTH,
        logging_steps=1,
        seed=0,
        save_total_limit=1,  # a full fine-tune's checkpoint is 1.6 GB with its optimizer state
        dtype="float32",  # the first loss is compared with the base model's fp32 loss: no CPU bf16 autocast
    )
    losses = [h["loss"] for h in r.train_losses]
    print(
        f"{method}: base loss {base_loss:.3f}, train losses {[round(x, 3) for x in losses]}, "
        f"{r.train_seconds:.1f} s, {r.trainable_params:,} trainable"
    )
    assert r.steps == 2 and r.n_train == len(QA) and len(losses) == 2 and all(map(math.isfinite, losses))
    metrics = read_artifact(out)["metrics"]
    assert metrics["train_loss_first"] == losses[0] and metrics["train_loss_last"] == losses[-1]
    assert metrics["trainable_params"] == r.trainable_params > 0 and metrics["steps"] == 2
    if starts_as_base:
        assert losses[0] == pytest.approx(base_loss, abs=1e-3)
    else:
        assert losses[0] < base_loss + START_SLACK, (losses[0], base_loss)
    assert (
        losses[1] < losses[0]
    )  # one step at the method's default learning rate lowers the same batch's loss

    # the saved folder reloads to the trained model, which is not the base any more
    from peft import PeftModel

    reloaded = _load(out) if method == "full" else PeftModel.from_pretrained(_load(default_dir), out).eval()
    after = _logits(reloaded, prompt)
    assert (after - _logits(trained.pop("model"), prompt)).abs().max().item() < TOL
    assert (after - base_logits).abs().max().item() > 10 * TOL
    if not mergeable:
        return

    merged = export_model(out, tmp_path / "merged")
    assert (_logits(_load(merged), prompt) - after).abs().max().item() < TOL  # merged == adapter
    if method == "lora":  # once through the real command line
        proc = run_cli("check-prompt", str(merged))
        assert "[ok] rag prompt" in proc.stdout and "[ok] closed-book prompt" in proc.stdout
    else:
        assert prompt_parity(merged).ok, prompt_parity(merged).text()
