"""retriever stage: Encoder, KnowledgeIndex (versioned FAISS + BM25 + chunk store), Retriever (dense, bm25, hybrid).

Importing this package loads neither torch nor sentence-transformers (the Encoder does, when built).
"""

from retriever.admin import add_lexical, list_versions, prune, rollback
from retriever.encoder import DEFAULT_MODEL_NAME, Encoder, default_model_dir
from retriever.errors import FingerprintMismatch, IndexCorrupt, IndexLocked, IndexNotFound, LexicalMissing
from retriever.faiss_index import IndexOptions
from retriever.fusion import fuse
from retriever.index import KnowledgeIndex
from retriever.modes import RetrievalMode
from retriever.retriever import Retriever
from retriever.versions import current_version, index_lock
from retriever.writer import VersionWriter

__all__ = [
    "DEFAULT_MODEL_NAME",
    "Encoder",
    "FingerprintMismatch",
    "IndexCorrupt",
    "IndexLocked",
    "IndexNotFound",
    "IndexOptions",
    "KnowledgeIndex",
    "LexicalMissing",
    "RetrievalMode",
    "Retriever",
    "VersionWriter",
    "add_lexical",
    "current_version",
    "default_model_dir",
    "fuse",
    "index_lock",
    "list_versions",
    "prune",
    "rollback",
]
