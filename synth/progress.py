"""The progress files: every generation, appended as it is made, so an interrupted run resumes.

One JSON line per generation: {"key", "chunk_id", "i", "text"}. In `synth-progress.jsonl` (the
generator's questions) the key hashes the chunk id, the chunk's text, the answer span (its type,
position, text and sentence) and the generation settings (generator, prompt version, seed, max_tokens),
so a changed chunk, span or setting is generated again and never mixed in. In
`synth-readback.jsonl` (the read-back answers) it hashes the pair's key, its question and the read-back
prompt version and max_tokens (synth/readback.py). A line cut short by a crash is ignored on reading.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path

logger = logging.getLogger(__name__)

PROGRESS_FILE = "synth-progress.jsonl"
READ_BACK_FILE = "synth-readback.jsonl"


def job_key(settings_key: str, chunk_id: str, text: str, part: str) -> str:
    """The key of one pair: what writes it (`settings_key`), its chunk, and `part` (the span asked)."""
    h = hashlib.sha256(f"{settings_key}\0{chunk_id}\0{part}\0{text}".encode()).hexdigest()
    return h[:24]


class Progress:
    def __init__(self, out_dir: str | Path, resume: bool = True, name: str = PROGRESS_FILE):
        self.path = Path(out_dir) / name
        self.done: dict[str, str | None] = {}  # key -> generated text (None: the generation failed)
        self.torn = 0
        if resume and self.path.is_file():
            self._read()
        elif self.path.exists():
            self.path.unlink()

    def _read(self) -> None:
        with self.path.open(encoding="utf-8") as f:
            for line in f:
                try:
                    row = json.loads(line)
                    self.done[row["key"]] = row["text"]
                except (json.JSONDecodeError, KeyError, TypeError):
                    self.torn += 1
        with self.path.open("rb+") as f:  # a torn last line must not swallow the next one
            if f.seek(0, os.SEEK_END) and (f.seek(-1, os.SEEK_END), f.read(1))[1] != b"\n":
                f.write(b"\n")
        if self.torn:
            logger.warning("%s: ignored %d unreadable lines (an interrupted write)", self.path, self.torn)

    def add(self, rows: list[tuple[str, str, int, str | None]]) -> None:
        """Append (key, chunk_id, i, text) rows and flush them to disk before returning."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a", encoding="utf-8") as f:
            for key, chunk_id, i, text in rows:
                f.write(
                    json.dumps({"key": key, "chunk_id": chunk_id, "i": i, "text": text}, ensure_ascii=False)
                    + "\n"
                )
                self.done[key] = text
            f.flush()
            os.fsync(f.fileno())
