"""`RUN/winner.json`: the system a run's verdict chose and everything needed to serve exactly it.

Written by the lifecycle (`ragtune run`), read by `ragtune serve --from RUN`; defined here so serve never
imports the lifecycle (shared/DESIGN.md). Paths inside are relative to the run folder, so a run folder
can be moved or copied to another machine and still served.

    {"format": "ragtune-winner-v1", "run": "my-run", "system": "raft+rag",
     "model": "models/raft", "index": "index", "index_version": "v0003", "retriever": null,
     "retrieval": true, "top_k": 3, "fewshot": [{"question": ..., "answer": ...}], "system_prompt": null,
     "prompt_format": "ragtune-rag-v1",
     "won_on": {"split": "user", "metric": "exact_match", "n": 40, "score": {...}, "runner_up": "rag",
                "vs_runner_up": {...}, "distinguishable": true},
     "serve_command": "ragtune serve --from RUN"}
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError

WINNER_FILE = "winner.json"
WINNER_FORMAT = "ragtune-winner-v1"


@dataclass
class Winner:
    run: str  # the run folder's name: what /v1/models and every answer report
    system: str  # the system's name in the report (rag, fewshot+rag, raft+rag, ...)
    model: str | None  # generator folder, relative to the run folder; None: the embedded default
    index: str | None  # index folder, relative to the run folder; None: a system without retrieval
    index_version: str | None = None  # the version the verdict was measured on
    retriever: str | None = None  # retriever folder (relative); None: the encoder the index was built with
    retrieval: bool = False
    top_k: int = 0
    retrieval_mode: str = "dense"  # dense, bm25 or hybrid (winner files written before hybrid search: dense)
    fewshot: list[dict[str, str]] = field(default_factory=list)  # earlier turns: question -> answer
    system_prompt: str | None = None
    prompt_format: str | None = None
    won_on: dict[str, Any] = field(default_factory=dict)
    serve_command: str = ""
    format: str = WINNER_FORMAT

    def resolve(self, run_dir: str | Path, rel: str | None) -> Path | None:
        return None if rel is None else (Path(run_dir) / rel).resolve()


def write_winner(run_dir: str | Path, winner: Winner) -> Path:
    """Write `RUN/winner.json` atomically (temporary file, then rename)."""
    path = Path(run_dir) / WINNER_FILE
    tmp = path.with_name(f".{WINNER_FILE}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(asdict(winner), indent=2) + "\n", encoding="utf-8")
    tmp.replace(path)
    return path


def read_winner(run_dir: str | Path) -> Winner:
    """The winner of a finished run; a clear error when the folder is no finished run."""
    run = Path(run_dir)
    path = run / WINNER_FILE
    if not path.is_file():
        what = "does not exist" if not run.exists() else f"holds no {WINNER_FILE}"
        raise RagtuneError(
            f"--from {run_dir}: the folder {what}; make a run with `ragtune run DOCS --out {run_dir}` "
            "(a run writes winner.json when its verdict is in)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise RagtuneError(f"{path} is not valid JSON ({e.msg}); rerun `ragtune run` to rewrite it") from None
    if data.get("format") != WINNER_FORMAT:
        raise RagtuneError(
            f"{path} has format {data.get('format')!r}, this ragtune reads {WINNER_FORMAT!r}; rerun "
            "`ragtune run` with this version"
        )
    known = set(Winner.__dataclass_fields__)
    try:
        winner = Winner(**{k: v for k, v in data.items() if k in known})
    except TypeError as e:
        raise RagtuneError(f"{path} misses a field ({e}); rerun `ragtune run` to rewrite it") from None
    for what, rel in (("model", winner.model), ("index", winner.index), ("retriever", winner.retriever)):
        if rel is not None and not (run / rel).exists():
            raise RagtuneError(
                f"{path} names {what} {rel}, which is not in {run_dir}; rerun `ragtune run` to rebuild it"
            )
    return winner
