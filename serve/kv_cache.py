"""Decode-time speed-ups for the transformers backend: a KV cache that grows in place, and GQA attention
that does not copy the cache.

transformers' `DynamicLayer.update` appends each new token with `torch.cat`, which copies the whole
cache of every layer at every decode step, and its SDPA path (`sdpa_attention_forward`) repeats grouped
key/value heads (`repeat_kv`, another full copy per layer and step) whenever an attention mask is given,
which a left-padded batch always needs. On a 2-core CPU, batch 8 with ~800-token RAG prompts, those
copies took ~40% of a decode step (torch profiler: `aten::copy_` + `aten::cat`). The two pieces here
compute the same attention without them:
- `GrowingLayer` keeps keys and values in a buffer with room to spare and exposes a view of the filled
  part; appending writes in place. When the backend replaces `.keys`/`.values` (merging a batch,
  dropping finished rows), the next update adopts the new tensors into a fresh buffer.
- `gqa_sdpa` is SDPA with `enable_gqa=True` (torch ≥ 2.5): grouped heads are read in place. On CPU it
  runs with a mask and gives the same result as repeating the heads (bench/serve.py checks tokens).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import Cache, DynamicCache, DynamicLayer

ATTENTION = "ragtune_gqa_sdpa"
_SPARE = 128  # positions of room added on each growth: one buffer copy per 128 decode steps


class GrowingLayer(DynamicLayer):
    """A `DynamicLayer` whose `.keys`/`.values` are views of buffers of shape [B, kv_heads, room, head_dim]."""

    def lazy_initialization(self, key_states: torch.Tensor, value_states: torch.Tensor) -> None:
        super().lazy_initialization(key_states, value_states)
        self._kbuf = self._vbuf = None

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        old = self.keys.shape[-2] if self.keys.numel() else 0
        need = old + key_states.shape[-2]
        mine = self._kbuf is not None and (self.keys.data_ptr(), self.values.data_ptr()) == (
            self._kbuf.data_ptr(),
            self._vbuf.data_ptr(),
        )
        if not mine or self._kbuf.shape[0] != key_states.shape[0] or need > self._kbuf.shape[-2]:
            self._kbuf = _room(self.keys, key_states, old, need)
            self._vbuf = _room(self.values, value_states, old, need)
        self._kbuf[:, :, old:need] = key_states
        self._vbuf[:, :, old:need] = value_states
        self.keys, self.values = self._kbuf[:, :, :need], self._vbuf[:, :, :need]
        return self.keys, self.values


def _room(current: torch.Tensor, new: torch.Tensor, filled: int, need: int) -> torch.Tensor:
    """A buffer with room for `need` + spare positions, holding the `filled` positions of `current`."""
    b, heads, _, dim = new.shape
    buf = new.new_empty((b, heads, need + _SPARE, dim))
    if filled:
        buf[:, :, :filled] = current
    return buf


class GrowingCache(DynamicCache):
    """A `DynamicCache` made of `GrowingLayer`s (one per model layer, created on first use)."""

    def __init__(self) -> None:
        Cache.__init__(self, layer_class_to_replicate=GrowingLayer)


def supports_growing_cache(config: Any) -> bool:
    """Only full-attention decoders: sliding-window layers keep their own cache class."""
    text = config.get_text_config(decoder=True) if hasattr(config, "get_text_config") else config
    types = getattr(text, "layer_types", None) or []
    return not getattr(text, "sliding_window", None) and all(t == "full_attention" for t in types)


def gqa_sdpa(
    module: torch.nn.Module,
    query: torch.Tensor,  # [B, heads, q_len, head_dim]
    key: torch.Tensor,  # [B, kv_heads, kv_len, head_dim]
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    dropout: float = 0.0,
    scaling: float | None = None,
    is_causal: bool | None = None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """transformers' attention-function signature; returns [B, q_len, heads, head_dim]."""
    causal = is_causal if is_causal is not None else getattr(module, "is_causal", True)
    causal = bool(query.shape[2] > 1 and attention_mask is None and causal)
    gqa = key.shape[1] != query.shape[1]
    if query.shape[2] == 1 and attention_mask is not None:  # a decode step over a padded (or masked) batch
        return _rows_alone(query, key, value, attention_mask, scaling, gqa), None
    out = torch.nn.functional.scaled_dot_product_attention(
        query,
        key,
        value,
        attn_mask=attention_mask,
        dropout_p=dropout,
        scale=scaling,
        is_causal=causal,
        enable_gqa=gqa,
    )
    return out.transpose(1, 2).contiguous(), None


def _rows_alone(query, key, value, mask, scaling, gqa) -> torch.Tensor:
    """A decode step's attention row by row, each over its own keys only (its left padding cut off).

    One SDPA over the left-padded batch gives a row a result that depends on how much padding it has,
    i.e. on which other rows share its batch (the kernel's key blocks fall elsewhere), and bf16 weights
    turn such last-bit differences into different tokens now and then. Row by row, with no mask, a row's
    attention is exactly what it gets alone. (The bf16 product of a lone row still rounds differently from
    the same row beside others: docs/benchmarks.md, "Answers under load".) Returns
    [B, 1, heads, head_dim]."""
    keep = mask[:, 0, -1, :] if mask.dtype == torch.bool else mask[:, 0, -1, :] == 0  # [B, T]
    starts = (keep.shape[1] - keep.sum(dim=1)).tolist()  # left padding per row
    rows = [
        torch.nn.functional.scaled_dot_product_attention(
            query[r : r + 1],
            key[r : r + 1, :, start:],
            value[r : r + 1, :, start:],
            scale=scaling,
            enable_gqa=gqa,
        )
        for r, start in enumerate(starts)
    ]
    return torch.cat(rows).transpose(1, 2).contiguous()


def register_attention() -> str:
    """Register `gqa_sdpa` (with SDPA's mask builder) under `ATTENTION`; returns that name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import ALL_MASK_ATTENTION_FUNCTIONS, sdpa_mask

    AttentionInterface.register(ATTENTION, gqa_sdpa)
    ALL_MASK_ATTENTION_FUNCTIONS.register(ATTENTION, sdpa_mask)
    return ATTENTION


def to_float32(cache: Cache) -> None:
    """Cast every layer's keys and values to fp32 in place (after a bf16-autocast prefill)."""
    for layer in cache.layers:  # under autocast, keys come out fp32 (RoPE) and values bf16
        if layer.keys is not None:
            layer.keys, layer.values = layer.keys.float(), layer.values.float()
