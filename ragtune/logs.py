"""Logging set-up for the command line (library code only calls logging.getLogger(__name__)).

The terminal shows ragtune's own log lines, its progress bars and its summaries. Everything the libraries
underneath say (transformers' deprecation notes, Python warnings, sentence-transformers' model-card bars)
goes to a log file, whose path is printed once, the first time something is written there; a library's
error is also shown on the terminal. The file is $RAGTUNE_LOG_FILE, a command's own choice
(`use_log_file`, e.g. the demo's `<out>/ragtune.log`), or one per run under the temp folder.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

from ragtune.errors import RagtuneError

# Top-level packages whose log lines are ragtune's own (the stages, bench scripts, `python -m ...`).
OWN = frozenset(
    {
        "ragtune",
        "ingest",
        "retriever",
        "tuner",
        "serve",
        "eval",
        "demo",
        "synth",
        "lifecycle",
        "bench",
        "__main__",
    }
)
# Libraries that give their root logger a terminal handler of their own and stop propagation.
OWN_HANDLER_LIBRARIES = ("transformers", "datasets", "huggingface_hub")
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
_notice = logging.getLogger("ragtune.logs")


def is_own(record: logging.LogRecord) -> bool:
    return record.name.partition(".")[0] in OWN


class LogFile(logging.Handler):
    """Library records, into a file opened on first use; says once, on the terminal, where the file is."""

    def __init__(self, path: Path | None = None):
        super().__init__(logging.DEBUG)
        self.path, self._file = path, None

    def use(self, path: str | Path) -> None:
        """Write to `path` from now on (a command that has an output folder keeps its log there)."""
        self.acquire()
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
            self.path = Path(path)
        finally:
            self.release()

    def file(self):
        if self._file is None:
            if self.path is None:
                folder = Path(tempfile.gettempdir()) / "ragtune-logs"
                self.path = folder / f"ragtune-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}.log"
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115 - held until close()
            _notice.info("library warnings and messages go to %s", self.path)
        return self._file

    def emit(self, record: logging.LogRecord) -> None:
        try:
            f = self.file()
            f.write(self.format(record) + "\n")
            f.flush()
        except Exception:  # noqa: BLE001 - logging's own contract: report, never raise
            self.handleError(record)

    def write_raw(self, text: str) -> None:
        """Text a library printed itself (progress bars, print()), kept as it came."""
        if text.strip():
            f = self.file()
            f.write(text if text.endswith("\n") else text + "\n")
            f.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None
        super().close()


class _ToFile:
    """A stream that forwards what is written to the log file: a redirect target for sys.stdout/stderr."""

    def __init__(self, log: LogFile):
        self.log, self.buf = log, ""

    def write(self, s: str) -> int:
        *lines, self.buf = (self.buf + s).replace("\r", "\n").split("\n")  # a bar's redraw is a line
        for line in lines:
            self.log.write_raw(line)
        return len(s)

    def flush(self) -> None:
        text, self.buf = self.buf, ""
        self.log.write_raw(text)

    def isatty(self) -> bool:
        return False


_log_file: LogFile | None = None


def progress_enabled() -> bool:
    """Whether ragtune draws progress bars: off when $RAGTUNE_PROGRESS is 0 (`ragtune demo --no-progress` sets
    it), read when a bar starts. (tqdm's own TQDM_DISABLE is read once, at import, so it cannot be set late.)"""
    return os.environ.get("RAGTUNE_PROGRESS", "1").strip().lower() not in ("0", "false", "no", "off")


def setup_logging(level: str | int | None = None) -> None:
    global _log_file
    level = level or os.environ.get("RAGTUNE_LOG_LEVEL", "INFO")
    if isinstance(level, str):
        names = logging.getLevelNamesMapping()
        if level.upper() not in names:
            raise RagtuneError(f"log level {level!r} is not one of DEBUG, INFO, WARNING, ERROR")
        level = names[level.upper()]
    root = logging.getLogger()
    for h in list(root.handlers):
        if isinstance(h, LogFile) or getattr(h, "ragtune_console", False):
            root.removeHandler(h)
            h.close()
    console = logging.StreamHandler()
    console.ragtune_console = True
    console.setFormatter(logging.Formatter(FORMAT, datefmt="%H:%M:%S"))
    console.addFilter(lambda r: (is_own(r) and r.levelno >= level) or r.levelno >= logging.ERROR)
    env_file = os.environ.get("RAGTUNE_LOG_FILE")
    _log_file = LogFile(Path(env_file) if env_file else None)
    _log_file.setFormatter(logging.Formatter(FORMAT, datefmt="%Y-%m-%d %H:%M:%S"))
    _log_file.addFilter(lambda r: not is_own(r) and r.levelno >= logging.WARNING)  # no libraries' INFO
    root.addHandler(console)
    root.addHandler(_log_file)
    root.setLevel(min(level, logging.WARNING))
    logging.captureWarnings(True)  # warnings.warn(...) from libraries: the py.warnings logger, so the file
    adopt_library_loggers()


def use_log_file(path: str | Path) -> None:
    """Send library output to `path` (after setup_logging; a no-op without it, e.g. in library use)."""
    if _log_file is not None:
        _log_file.use(path)


def adopt_library_loggers() -> None:
    """Route libraries that print through a handler of their own (transformers, datasets, huggingface_hub)
    into ours. They install it when first imported: call this after importing them."""
    for name in OWN_HANDLER_LIBRARIES:
        if name not in sys.modules:
            continue
        lib = logging.getLogger(name)
        for h in list(lib.handlers):
            if type(h) is logging.StreamHandler and getattr(h, "stream", None) in (sys.stderr, sys.stdout):
                lib.removeHandler(h)
        lib.propagate = True


def quiet_libraries() -> None:
    """For commands that load models: no weight-loading or dataset bars from transformers and datasets
    (they are not ragtune's steps), and their log lines through ours (to the file)."""
    from datasets.utils import logging as ds_logging
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()
    ds_logging.disable_progress_bar()
    adopt_library_loggers()


@contextlib.contextmanager
def library_output() -> Iterator[None]:
    """Around library code that prints to the terminal by itself (a progress bar, print()): its output
    goes to the log file instead. Without setup_logging (library use) it changes nothing."""
    adopt_library_loggers()
    if _log_file is None:
        yield
        return
    stream = _ToFile(_log_file)
    with contextlib.redirect_stderr(stream), contextlib.redirect_stdout(stream):
        try:
            yield
        finally:
            stream.flush()
