"""Linear layers stored transposed, for batch-1 decode on CPU.

`nn.Linear` keeps its weight as [out, in] and computes `x @ W.T`; for one row of `x` (a decode step)
torch hands that to a GEMV that, on the 2-core machines measured here, streams the weights at ~16 GB/s,
while `x @ Wt` with the weight stored [in, out] runs at ~29 GB/s for the 49k-word output layer (a one-off
micro-benchmark, 2026-11-30; bench/engines.py measures the whole backend). The product is the same fp32
product, so greedy tokens are the same (the backend's tests compare them); only the storage changes.
The output layer, tied to the input embeddings in small models, gets its own transposed copy (the
embedding lookup keeps the original), which costs its size once more in memory.
"""

from __future__ import annotations

import torch
from torch import nn


class TransposedLinear(nn.Module):
    """Inference-only drop-in for `nn.Linear`: the weight stored as [in, out], `y = x @ Wt + b`."""

    def __init__(self, linear: nn.Linear):
        super().__init__()
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight_t = nn.Parameter(linear.weight.detach().t().contiguous(), requires_grad=False)
        self.bias = linear.bias

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.matmul(x, self.weight_t)
        return y if self.bias is None else y + self.bias


def transpose_linears(model: nn.Module) -> int:
    """Replace every `nn.Linear` of an fp32 inference model in place; returns how many were replaced."""
    swaps = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) is nn.Linear and child.weight.dtype == torch.float32
    ]
    for parent, name, child in swaps:
        setattr(parent, name, TransposedLinear(child))
    return len(swaps)


class Bf16Linear(nn.Module):
    """Inference-only drop-in for `nn.Linear` with its weight stored in bf16 ([out, in], half the bytes).

    The input is rounded to bf16 for the product (fp32 accumulation inside oneDNN), the output handed
    back in the input's dtype, so norms, attention, the residual stream and the KV cache stay fp32. Under
    bf16 autocast (prefill) it returns bf16, as autocast would."""

    def __init__(self, linear: nn.Module):
        super().__init__()
        weight = linear.weight_t.t() if isinstance(linear, TransposedLinear) else linear.weight
        self.in_features, self.out_features = linear.in_features, linear.out_features
        self.weight = nn.Parameter(weight.detach().to(torch.bfloat16).contiguous(), requires_grad=False)
        self.bias = None if linear.bias is None else nn.Parameter(linear.bias.detach().to(torch.bfloat16))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # as 2-D rows: a strided 3-D input (the last position's hidden state) would send `linear` down a
        # batched matmul that copies the whole weight first
        rows = x.reshape(-1, self.in_features).to(torch.bfloat16)
        y = nn.functional.linear(rows, self.weight, self.bias).reshape(*x.shape[:-1], self.out_features)
        return y if torch.is_autocast_enabled(x.device.type) else y.to(x.dtype)


def bf16_linears(model: nn.Module) -> int:
    """Replace every fp32 linear layer (plain or transposed) by a `Bf16Linear`; returns how many."""
    swaps = [
        (parent, name, child)
        for parent in model.modules()
        for name, child in parent.named_children()
        if type(child) in (nn.Linear, TransposedLinear)
    ]
    for parent, name, child in swaps:
        setattr(parent, name, Bf16Linear(child))
    return len(swaps)
