"""Loss on the answer tokens with logits computed only where there is an answer token.

A causal LM's output layer maps every position to the whole vocabulary (49,152 words for the default
generator): on a RAG example of ~380 tokens whose answer is 5 tokens, nearly all of that work and the
[batch, length, vocab] logits tensor are thrown away by the -100 labels. Llama-style models in
transformers take `logits_to_keep` (positions to project); this trainer passes the positions where any
row of the batch has a label and computes the same token-mean cross-entropy as the default loss.
Prompt-learning methods (prefix, prompt, p-tuning) shift positions by their virtual tokens, so they
keep the default loss. Written here because neither transformers' Trainer nor trl exposes it.
"""

from __future__ import annotations

import inspect
from typing import Any

from transformers import Trainer

IGNORE = -100


def supports_logits_to_keep(model: Any) -> bool:
    """Feature check, not a version check: does the (base) model's forward take `logits_to_keep`?"""
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


class AnswerLogitsTrainer(Trainer):
    """Trainer whose loss projects only the positions that predict a labelled token."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        import torch.nn.functional as F

        inputs = dict(inputs)
        labels = inputs.pop("labels")
        targets = labels[:, 1:]  # position t predicts token t + 1
        keep = (targets != IGNORE).any(dim=0).nonzero().squeeze(1)
        outputs = model(**inputs, logits_to_keep=keep)
        logits = outputs.logits.float()
        picked = targets[:, keep]
        loss = F.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), picked.reshape(-1), ignore_index=IGNORE, reduction="sum"
        )
        n = num_items_in_batch if num_items_in_batch is not None else (picked != IGNORE).sum()
        loss = loss / n
        return (loss, outputs) if return_outputs else loss
