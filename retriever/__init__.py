"""retriever stage."""
