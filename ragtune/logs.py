"""Logging set-up for the command line (library code only calls logging.getLogger(__name__))."""

from __future__ import annotations

import logging
import os


def setup_logging(level: str | int | None = None) -> None:
    level = level or os.environ.get("RAGTUNE_LOG_LEVEL", "INFO")
    logging.basicConfig(
        level=level if isinstance(level, int) else level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
    )
    for noisy in ("httpx", "urllib3", "filelock", "sentence_transformers", "transformers", "datasets"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, logging.getLogger().level))
