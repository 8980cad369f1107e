"""Steps keyed by the hash of their inputs and settings, recorded in `RUN/steps.json` (DVC's lock file, in
small): a step whose key matches the record of its last success, with its outputs still on disk, is
skipped and returns the recorded result; any other runs.

A step's record is dropped before it runs and written (atomically: temporary file, then rename) only
after it succeeds, so a step interrupted anywhere (Ctrl-C, kill -9) has no record and runs again; what it
had half-written is never read by a later step, whose own key names this step's recorded result. The
stages' own resumability (synth's progress file, the trainer's checkpoints, eval's prediction cache)
makes that rerun cheap.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

STEPS_FILE = "steps.json"


def key_of(parts: Any) -> str:
    """The hash of a JSON-able description of a step's inputs and settings."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()[:20]


class StepStore:
    """Numbered terminal lines with each step's wall time, and the records that let a rerun skip."""

    def __init__(self, run_dir: Path, echo: Callable[[str], None], total: int):
        self.path = run_dir / STEPS_FILE
        self.echo, self.total, self.n = echo, total, 0
        self.records: dict[str, Any] = {}
        self.ran: list[str] = []  # the steps this invocation executed (not skipped)
        if self.path.is_file():
            try:
                self.records = json.loads(self.path.read_text(encoding="utf-8"))
            except json.JSONDecodeError:  # a torn file cannot happen (atomic writes); start afresh if edited
                self.records = {}

    def run(
        self,
        name: str,
        title: str,
        key_parts: Any,
        fn: Callable[[], Any],
        outputs: Sequence[Path] = (),
    ) -> Any:
        """`fn()`'s result, or the recorded one when the key and the outputs are unchanged."""
        self.n += 1
        head = f"[{self.n}/{self.total}] {title}"
        key = key_of(key_parts)
        rec = self.records.get(name)
        if rec and rec.get("key") == key and all(Path(p).exists() for p in outputs):
            self.echo(f"{head}: unchanged, skipped")
            return rec["result"]
        if name in self.records:
            del self.records[name]
            self._save()
        self.echo(f"{head} ...")
        t0 = time.perf_counter()
        result = fn()
        dt = round(time.perf_counter() - t0, 1)
        self.records[name] = {"key": key, "result": result, "seconds": dt, "finished": time.time()}
        self._save()
        self.ran.append(name)
        self.echo(f"{head}: done in {dt:.1f} s")
        return result

    def seconds(self) -> dict[str, float]:
        return {name: rec.get("seconds", 0.0) for name, rec in self.records.items()}

    def _save(self) -> None:
        tmp = self.path.with_name(f".{STEPS_FILE}.tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.records, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.path)
