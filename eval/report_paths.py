"""No machine paths in a report: absolute paths become relative to the report folder or to `~`.

A report is shared; the folders of the machine that made it (the home folder's model cache, the
project folder) are not the reader's business. Every string written into report.md, report.html and
results.json goes through `portable`: an absolute path whose first component exists on this machine
(so "/v1/chat" and "1/2" are left alone) is rewritten to the shorter of its path relative to the report
folder (when the two share a folder below /) and its `~/…` form (for paths under the home folder); a path
that shares neither keeps only its last two names (`.../models/ft`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

# An absolute path: a slash not preceded by a word character, a dot, a colon (URLs), a slash or a tilde.
_ABS = re.compile(r"(?<![\w.:/~\-])/[\w.@+\-]+(?:/[\w.@+\-]*)*")


@lru_cache(maxsize=256)
def _root_exists(first: str) -> bool:
    return os.path.exists("/" + first)


def _rewrite(path: str, report_dir: str, home: str) -> str:
    first = path.lstrip("/").split("/", 1)[0]
    if not _root_exists(first):
        return path
    options = []
    if os.path.commonpath([path, report_dir]) != "/":  # a relative path that climbs to / names it all
        options.append(os.path.relpath(path, report_dir))
    if home not in ("", "/") and (path == home or path.startswith(home + "/")):
        options.append("~" + path[len(home) :])
    if not options:  # shares nothing with the report folder or home: only its last two names
        return ".../" + "/".join(path.rstrip("/").split("/")[-2:])
    return min(options, key=len)


def portable_text(text: str, report_dir: str | Path) -> str:
    """`text` with every absolute path of this machine made relative to `report_dir` or `~`."""
    if "/" not in text:
        return text
    report = os.path.realpath(report_dir)
    home = os.path.realpath(os.path.expanduser("~"))

    def sub(m: re.Match) -> str:
        p = m.group(0)
        real = os.path.realpath(p) if os.path.exists(p) else os.path.normpath(p)
        return _rewrite(real, report, home)

    return _ABS.sub(sub, text)


def portable(obj: Any, report_dir: str | Path) -> Any:
    """A copy of a JSON-like object with `portable_text` applied to every string (keys too)."""
    if isinstance(obj, str):
        return portable_text(obj, report_dir)
    if isinstance(obj, Mapping):
        return {portable_text(str(k), report_dir): portable(v, report_dir) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [portable(v, report_dir) for v in obj]
    return obj


def portable_blocks(blocks: list[tuple], report_dir: str | Path) -> list[tuple]:
    """Report blocks (eval/report.py) with their text made portable; charts' bytes are left alone."""
    out = []
    for b in blocks:
        if b[0] == "img":
            out.append(b)
        elif b[0] == "table":
            out.append(
                ("table", portable(list(b[1]), report_dir), [portable(list(r), report_dir) for r in b[2]])
            )
        else:
            out.append((b[0], portable(b[1], report_dir)))
    return out
