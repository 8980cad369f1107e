"""Prompt-prefix reuse for the transformers backend: the KV states of recent prompts, kept within a budget.

The backend prefills every prompt alone in chunks aligned to its first token (serve/hf_backend.py), so the
keys and values of a prompt's first k·chunk tokens depend on those tokens only: they are the same, bit for
bit, whatever follows. A prompt that starts with a cached prompt's first k·chunk tokens therefore resumes
its prefill from there, and a prompt seen before in full skips it (its last logits are kept too). Reuse
never changes an answer; it removes the prefill of repeated prompts (a question asked again, a retry,
the same passages with the same system prompt).

Entries are whole prompts' caches (fp32, as decode reads them), found by the hash of each chunk-aligned
prefix; least recently used entries go first once their bytes pass the budget. Chunks of prompts that
share less than one chunk (a 57-token system prompt with a 256-token chunk) are not reused: the chunk
alignment is what keeps the states exact.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch


@dataclass
class _Entry:
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # per layer: keys, values [1, kv_heads, T, head_dim]
    logits: torch.Tensor  # [1, vocab]: the prompt's last position
    keys: list[bytes]  # the prefix hashes that lead here
    nbytes: int


@dataclass
class Hit:
    tokens: int  # how many of the prompt's first tokens the cache holds
    layers: list[tuple[torch.Tensor, torch.Tensor]]  # views of the entry's first `tokens` positions
    logits: torch.Tensor | None  # the last logits when `tokens` is the whole prompt


class PrefixCache:
    def __init__(self, max_bytes: int, chunk: int):
        self.max_bytes, self.chunk = max_bytes, chunk
        self._entries: OrderedDict[bytes, _Entry] = OrderedDict()  # full-prompt hash -> entry, LRU order
        self._index: dict[bytes, tuple[bytes, int]] = {}  # prefix hash -> (entry, prefix length)
        self.nbytes = 0
        self.hits = 0
        self.tokens_reused = 0
        self._lock = threading.Lock()  # the worker thread and in-process callers may share it

    def _lengths(self, n: int) -> list[int]:
        """The prefix lengths an n-token prompt can resume from, longest first: n, then chunk multiples."""
        return [n] + list(range((n - 1) // self.chunk * self.chunk, 0, -self.chunk))

    def lookup(self, ids: list[int]) -> Hit | None:
        if self.max_bytes <= 0:
            return None
        with self._lock:
            return self._lookup(ids)

    def _lookup(self, ids: list[int]) -> Hit | None:
        for n in self._lengths(len(ids)):
            found = self._index.get(_hash(ids[:n]))
            if found is None:
                continue
            entry = self._entries[found[0]]
            self._entries.move_to_end(found[0])
            self.hits += 1
            self.tokens_reused += n
            layers = [(k[:, :, :n], v[:, :, :n]) for k, v in entry.layers]
            return Hit(n, layers, entry.logits if n == len(ids) else None)
        return None

    def store(self, ids: list[int], layers: list[tuple[torch.Tensor, torch.Tensor]], logits) -> None:
        """Keep a prefilled prompt's cache (copied) and last logits, dropping the oldest over the budget."""
        full = _hash(ids)
        if self.max_bytes <= 0 or full in self._entries:
            return
        kept = [(k.clone(), v.clone()) for k, v in layers]
        nbytes = sum(k.nbytes + v.nbytes for k, v in kept)
        if nbytes > self.max_bytes:
            return
        with self._lock:
            self._store(ids, full, kept, logits.clone(), nbytes)

    def _store(self, ids: list[int], full: bytes, kept, logits, nbytes: int) -> None:
        keys = [_hash(ids[:n]) for n in self._lengths(len(ids))]
        self._entries[full] = _Entry(kept, logits, keys, nbytes)
        for key, n in zip(keys, self._lengths(len(ids))):
            self._index[key] = (full, n)
        self.nbytes += nbytes
        while self.nbytes > self.max_bytes:
            self._drop(next(iter(self._entries)))

    def _drop(self, full: bytes) -> None:
        entry = self._entries.pop(full)
        self.nbytes -= entry.nbytes
        for key in entry.keys:
            if self._index.get(key, (None,))[0] == full:
                del self._index[key]


def _hash(ids: list[int]) -> bytes:
    return hashlib.blake2b(",".join(map(str, ids)).encode(), digest_size=16).digest()
