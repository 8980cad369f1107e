"""Errors of the knowledge index; all are RagtuneError, so the CLI prints them without a traceback."""

from __future__ import annotations

from ragtune.errors import RagtuneError


class IndexNotFound(RagtuneError):
    """The folder holds no published index version."""


class IndexCorrupt(RagtuneError):
    """A file of an index version is missing, unreadable or does not match its manifest."""


class FingerprintMismatch(RagtuneError):
    """The index was built by another encoder than the one asked to read it."""


class IndexLocked(RagtuneError):
    """Another process is writing this index."""


class LexicalMissing(RagtuneError):
    """bm25 or hybrid retrieval was asked of an index version built without a lexical (BM25) part."""
