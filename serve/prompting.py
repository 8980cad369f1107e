"""Chat messages → prompt token ids with the model's own chat template, control tokens defused.

A document (or a message) that contains the text of a special token, e.g. `<|system|>` or `<|end|>`,
would otherwise be tokenized as that control token and could open a turn of its own. Every special
token string found in message content is broken with a space (`< |system|>`) before templating, so
only the chat template itself places control tokens.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


def special_strings(tokenizer: Any) -> list[str]:
    found = set(getattr(tokenizer, "all_special_tokens", []) or [])
    for tok in (getattr(tokenizer, "added_tokens_decoder", {}) or {}).values():
        if getattr(tok, "special", False):
            found.add(str(tok.content))
    return sorted((s for s in found if len(s) > 1), key=len, reverse=True)


def defuse(text: str, specials: Sequence[str]) -> str:
    for s in specials:
        if s in text:
            text = text.replace(s, f"{s[0]} {s[1:]}")
    return text


def render(
    tokenizer: Any, messages: Sequence[dict[str, str]], specials: Sequence[str] | None = None
) -> tuple[list[dict[str, str]], list[int]]:
    """(defused messages, prompt token ids ending with the assistant turn's opening)."""
    specials = special_strings(tokenizer) if specials is None else specials
    safe = [{**m, "content": defuse(m.get("content") or "", specials)} for m in messages]
    enc = tokenizer.apply_chat_template(safe, add_generation_prompt=True, tokenize=True, return_dict=True)
    return safe, list(enc["input_ids"])
