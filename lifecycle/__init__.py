"""lifecycle: `ragtune run DOCS --out RUN`, the whole lifecycle on the user's documents.

    from lifecycle import RunConfig, run_lifecycle
    summary = run_lifecycle(RunConfig(docs="docs", out="run"))   # RUN/winner.json, RUN/report/report.md

It sits above every stage (shared/DESIGN.md: demo → lifecycle → synth, tuner, eval, serve, ingest) and
uses each through its public API; nothing below imports it. Importing it loads no heavy library.
"""

from lifecycle.config import DEFAULT_SYSTEMS, KNOWN_SYSTEMS, RunConfig, TuneSettings
from lifecycle.pipeline import run_lifecycle

__all__ = ["DEFAULT_SYSTEMS", "KNOWN_SYSTEMS", "RunConfig", "TuneSettings", "run_lifecycle"]
