"""ragtune: teach a language model a body of knowledge by retrieval, fine-tuning or both.

This package holds the CLI, the settings and the few contracts every stage shares. It imports
no stage: stages are reached lazily from :mod:`ragtune.cli` only.
"""

__version__ = "0.1.0"
