"""retriever stage: Encoder, KnowledgeIndex (versioned FAISS + chunk store), Retriever.

Importing this package loads neither torch nor sentence-transformers (the Encoder does, when built).
"""

from retriever.admin import list_versions, prune, rollback
from retriever.encoder import DEFAULT_MODEL_NAME, Encoder, default_model_dir
from retriever.errors import FingerprintMismatch, IndexCorrupt, IndexLocked, IndexNotFound
from retriever.faiss_index import IndexOptions
from retriever.index import KnowledgeIndex
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
    "Retriever",
    "VersionWriter",
    "current_version",
    "default_model_dir",
    "index_lock",
    "list_versions",
    "prune",
    "rollback",
]
