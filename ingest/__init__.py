"""ingest stage: sources → Documents → Chunks → a new index version (refreshed by content hash).

Importing this package loads neither torch nor sentence-transformers.
"""

from ingest.chunking import Chunker, ChunkerConfig, embedding_text
from ingest.datasets import ImportReport, import_dataset
from ingest.pipeline import IngestOptions, IngestReport, ingest
from ingest.readers import Skipped, load_documents, read_sources
from ingest.refresh import RefreshPlan, document_hash, make_plan

__all__ = [
    "Chunker",
    "ChunkerConfig",
    "ImportReport",
    "IngestOptions",
    "IngestReport",
    "RefreshPlan",
    "Skipped",
    "document_hash",
    "embedding_text",
    "import_dataset",
    "ingest",
    "load_documents",
    "make_plan",
    "read_sources",
]
