"""Tokenize conversations for training with the loss on assistant tokens only.

A chat template that marks assistant turns with `{% generation %}` (ragtune's tiny model does) gives
the mask through `return_assistant_tokens_mask`. Any other template works too: the assistant spans
are found by rendering the conversation prefix by prefix and mapping character spans to tokens.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.prompt import control_token_strings, defuse_control_tokens, render_prompt

log = logging.getLogger(__name__)
IGNORE = -100


def has_generation_markers(tokenizer: Any) -> bool:
    tpl = tokenizer.chat_template
    return isinstance(tpl, str) and "{% generation %}" in tpl.replace("{%- generation %}", "{% generation %}")


def check_chat_template(tokenizer: Any, where: str) -> None:
    if not getattr(tokenizer, "chat_template", None):
        raise RagtuneError(
            f"the tokenizer in {where} has no chat template; use a chat/instruct model or set "
            "`chat_template` in its tokenizer_config.json"
        )


def defuse_messages(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[dict[str, str]]:
    """Break control-token text inside message content exactly as the server does (`<|end|>` -> `< |end|>`),
    so a passage quoting a special token trains on the same tokens the server will send."""
    specials = getattr(tokenizer, "_ragtune_specials", None)
    if specials is None:
        specials = tokenizer._ragtune_specials = control_token_strings(tokenizer)
    return defuse_control_tokens(messages, tokenizer, specials)


def assistant_mask(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[list[int], list[int]]:
    """(input_ids, mask) for a whole conversation; mask is 1 on assistant content and its end token (not on
    whitespace the template writes after the end token)."""
    messages = defuse_messages(tokenizer, messages)
    if has_generation_markers(tokenizer):
        enc = tokenizer.apply_chat_template(
            list(messages), tokenize=True, return_dict=True, return_assistant_tokens_mask=True
        )
        return list(enc["input_ids"]), list(enc["assistant_masks"])
    return _mask_by_offsets(tokenizer, messages)


def _mask_by_offsets(tokenizer: Any, messages: Sequence[dict[str, str]]) -> tuple[list[int], list[int]]:
    text = tokenizer.apply_chat_template(list(messages), tokenize=False)
    spans = []
    for i, m in enumerate(messages):
        if m["role"] != "assistant":
            continue
        before = tokenizer.apply_chat_template(list(messages[:i]), tokenize=False, add_generation_prompt=True)
        upto = tokenizer.apply_chat_template(list(messages[: i + 1]), tokenize=False)
        if not text.startswith(before) or not text.startswith(upto):
            raise RagtuneError(
                "the chat template does not render conversations prefix by prefix; "
                "add {% generation %} markers around assistant content to the template"
            )
        # the turn ends at its end token: whitespace the template puts after it (ChatML's "\n") is
        # layout, never generated (generation stops at the end token), so it gets no loss
        spans.append((len(before), max(len(before), len(upto.rstrip()))))
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True)
    mask = [int(any(s < e2 and e > s2 for s2, e2 in spans) and e > s) for s, e in enc["offset_mapping"]]
    return list(enc["input_ids"]), mask


def encode_example(
    tokenizer: Any, messages: Sequence[dict[str, str]], max_length: int
) -> dict[str, list[int]] | None:
    """input_ids, attention_mask and labels (-100 outside assistant turns); None if truncation cut every
    answer token (the caller counts and reports those)."""
    ids, mask = assistant_mask(tokenizer, messages)
    if len(ids) > max_length:
        ids, mask = ids[:max_length], mask[:max_length]
    if not any(mask):
        return None
    labels = [t if m else IGNORE for t, m in zip(ids, mask)]
    return {"input_ids": ids, "attention_mask": [1] * len(ids), "labels": labels}


def encode_all(
    tokenizer: Any, examples: Sequence[Any], max_length: int, what: str
) -> list[dict[str, list[int]]]:
    out, dropped = [], []
    for ex in examples:
        enc = encode_example(tokenizer, ex.messages, max_length)
        if enc is None:
            dropped.append(ex.id)
        else:
            out.append(enc)
    if dropped:
        log.warning(
            "%s: %d example(s) longer than max_length=%d lost their whole answer and were dropped, e.g. %s",
            what,
            len(dropped),
            max_length,
            dropped[:3],
        )
    if examples and not out:
        raise RagtuneError(
            f"{what}: every example is longer than max_length={max_length} before its answer; "
            "raise --max-length or use fewer/shorter passages (--k)"
        )
    return out


class PadCollator:
    """Right-pads a batch (labels with -100) for causal-LM training."""

    def __init__(self, pad_id: int):
        self.pad_id = pad_id

    def __call__(self, rows: list[dict[str, list[int]]]) -> dict[str, Any]:
        import torch

        n = max(len(r["input_ids"]) for r in rows)

        def pad(key: str, value: int) -> Any:
            return torch.tensor([r[key] + [value] * (n - len(r[key])) for r in rows], dtype=torch.long)

        return {
            "input_ids": pad("input_ids", self.pad_id),
            "attention_mask": pad("attention_mask", 0),
            "labels": pad("labels", IGNORE),
        }


def serving_prompt_ids(tokenizer: Any, messages: Sequence[dict[str, str]]) -> list[int]:
    """Token ids the server sends for a conversation (everything before the assistant's answer)."""
    return render_prompt(tokenizer, messages)[1]
