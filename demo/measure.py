"""Measure what the base model can do: answer accuracy of greedy generation on chat prompts."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence


def normalize(s: str) -> str:
    return " ".join(s.lower().strip().rstrip(".").split())


def generate(model_dir: str | Path, message_lists: Sequence[list[dict]], max_new_tokens: int = 12,
             batch_size: int = 32) -> list[str]:
    """Greedy answers for chat prompts (left padding, stop at `<|end|>`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
    outs: list[str] = []
    for s in range(0, len(message_lists), batch_size):
        prompts = [tok.apply_chat_template(m, tokenize=False, add_generation_prompt=True)
                   for m in message_lists[s:s + batch_size]]
        enc = tok(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
        with torch.no_grad():
            gen = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                 eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
        outs.extend(tok.decode(g[enc["input_ids"].shape[1]:], skip_special_tokens=True) for g in gen)
    return outs


def answer_accuracy(model_dir: str | Path, rows: Sequence[dict[str, Any]], **kw) -> float:
    """Exact-match accuracy on rows of `{"messages", "answer"}` (messages without the answer)."""
    preds = generate(model_dir, [r["messages"] for r in rows], **kw)
    return sum(normalize(p) == normalize(r["answer"]) for p, r in zip(preds, rows)) / max(1, len(rows))
