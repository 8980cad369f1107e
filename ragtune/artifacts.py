"""`ragtune.json`: what a model folder records about how it was made (read by serve and eval)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ragtune.prompt import PROMPT_FORMAT

ARTIFACT_FILE = "ragtune.json"


def write_artifact(model_dir: str | Path, **fields: Any) -> Path:
    """Write or update `ragtune.json` (base_model, method, data_hash, prompt_format, metrics, ...)."""
    path = Path(model_dir) / ARTIFACT_FILE
    data = read_artifact(model_dir)
    data.setdefault("prompt_format", PROMPT_FORMAT)
    data.update(fields)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, sort_keys=True, default=str), encoding="utf-8")
    tmp.replace(path)
    return path


def read_artifact(model_dir: str | Path) -> dict[str, Any]:
    """Return `ragtune.json` as a dict, or {} when the folder has none (any plain HF model)."""
    path = Path(model_dir) / ARTIFACT_FILE
    if not path.is_file():
        return {}
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(
            f"{path} is not valid JSON ({e.msg}); re-export the model with `ragtune export`"
        ) from None
