"""The answer-only-logits loss equals the model's own causal-LM loss, and is what training uses."""

from __future__ import annotations

import pytest

from tuner.answer_loss import IGNORE, AnswerLogitsTrainer, supports_logits_to_keep


@pytest.fixture(scope="module")
def model_and_batch(tiny_generator):
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(tiny_generator)).eval()
    torch.manual_seed(0)
    ids = torch.randint(5, 300, (3, 24))
    labels = torch.full_like(ids, IGNORE)
    for row, (start, end) in enumerate(((18, 24), (10, 13), (20, 22))):  # answers at different places per row
        labels[row, start:end] = ids[row, start:end]
    mask = torch.ones_like(ids)
    mask[2, :4] = 0  # a padded row
    return model, {"input_ids": ids, "attention_mask": mask, "labels": labels}


@pytest.mark.parametrize("num_items", [None, 7])
def test_answer_logits_loss_equals_the_models_own_loss(model_and_batch, num_items):
    import torch

    model, batch = model_and_batch
    with torch.no_grad():
        want = model(**batch).loss if num_items is None else model(**batch, num_items_in_batch=num_items).loss
        got = AnswerLogitsTrainer.compute_loss(None, model, batch, num_items_in_batch=num_items)
    assert abs(float(got) - float(want)) < 1e-5


def test_answer_logits_loss_gradients_match(model_and_batch):
    import torch

    model, batch = model_and_batch
    w = model.model.layers[0].mlp.down_proj.weight
    grads = []
    for loss_fn in (
        lambda: model(**batch).loss,
        lambda: AnswerLogitsTrainer.compute_loss(None, model, batch),
    ):
        model.zero_grad()
        loss_fn().backward()
        grads.append(w.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-6)


def test_llama_supports_logits_to_keep(model_and_batch):
    model, _ = model_and_batch
    assert supports_logits_to_keep(model)
