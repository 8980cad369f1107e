"""The run's inputs, checked before anything heavy loads: each problem is one clear error that says what to
do, and nothing is written until they pass."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lifecycle.config import MIN_DOCUMENTS, RunConfig
from ragtune.errors import RagtuneError

RUN_FILE = "run.json"  # the inputs and settings a run folder was made from


def check_documents(docs: str) -> set[str]:
    """The ids of the readable documents in `docs`; an error when it is no folder or holds too few."""
    from ingest import read_sources

    path = Path(docs)
    if not path.is_dir():
        raise RagtuneError(f"DOCS {docs} is not a folder; pass the folder that holds your documents")
    loaded = read_sources([path])
    ids = {d.id for part in loaded for d in part.documents}
    n = len(ids)
    skipped = [s for part in loaded for s in part.skipped]
    if n == 0:
        why = f" ({len(skipped)} skipped, e.g. {skipped[0].path}: {skipped[0].reason})" if skipped else ""
        raise RagtuneError(
            f"DOCS {docs} holds no readable documents{why}; put .txt, .md, .html, .pdf or .jsonl files in it"
        )
    if n < MIN_DOCUMENTS:
        raise RagtuneError(
            f"DOCS {docs} holds {n} readable document(s); a run needs at least {MIN_DOCUMENTS}, because its "
            "questions are split by document into train, validation and test: add documents (or split "
            "long ones into several files)"
        )
    return ids


def check_qa(qa: str | None, doc_ids: set[str]) -> int | None:
    """The number of the user's questions; an error naming the line and field of a bad row, or a gold
    document (`doc_ids`, optional) that is not among the documents."""
    if qa is None:
        return None
    from ragtune.records import RecordError, load_qa

    if not Path(qa).is_file():
        raise RagtuneError(f"--qa {qa} does not exist; pass a .jsonl file with `question` and `answer` rows")
    try:
        rows = load_qa(qa)
    except RecordError as e:
        raise RagtuneError(f"--qa {e}") from None
    ids = [r.id for r in rows]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise RagtuneError(f"--qa {qa}: question id {dup!r} appears more than once; ids must be unique")
    for i, r in enumerate(rows, 1):
        unknown = [d for d in r.doc_ids if d not in doc_ids]
        if unknown:
            raise RagtuneError(
                f"--qa {qa}: question {r.id!r} (row {i}) names doc_ids {unknown[:3]} that are not documents of "
                f"DOCS (ids are paths relative to DOCS, e.g. {min(doc_ids)!r}); fix or drop its `doc_ids`"
            )
    return len(rows)


def check_base(base: str) -> Path:
    """The base generator's folder; an error when it is not a chat model folder."""
    from ragtune.models import is_default, model_dir_problem, resolve_generator

    if not is_default(base):
        problem = model_dir_problem(base, "--base", default_ok=True)
        if problem:
            raise RagtuneError(problem)
        if not _has_chat_template(Path(base)):
            raise RagtuneError(
                f"--base {base} is not a chat model: its tokenizer has no chat template (no "
                "chat_template in tokenizer_config.json, no chat_template.jinja); pass an instruct/chat "
                "model folder or `default`"
            )
    return resolve_generator(base, what="--base")


def _has_chat_template(folder: Path) -> bool:
    if (folder / "chat_template.jinja").is_file() or (folder / "chat_template.json").is_file():
        return True
    cfg = folder / "tokenizer_config.json"
    try:
        return bool(json.loads(cfg.read_text(encoding="utf-8")).get("chat_template"))
    except (OSError, json.JSONDecodeError):
        return False


def check_run_folder(cfg: RunConfig, inputs: dict[str, Any]) -> None:
    """Refuse an existing run folder made from other inputs, saying what differs (unless --force, which
    empties it); record the inputs of a new one."""
    import shutil

    out = Path(cfg.out)
    record = out / RUN_FILE
    if out.exists() and not out.is_dir():
        raise RagtuneError(f"--out {cfg.out} is a file; pass a folder for the run")
    if record.is_file():
        old = json.loads(record.read_text(encoding="utf-8"))
        differs = _differences(old.get("identity", {}), inputs)
        if differs and not cfg.force:
            raise RagtuneError(
                f"--out {cfg.out} holds a run made from other inputs ({'; '.join(differs)}); pass another "
                "--out, or --force to start over in it"
            )
        if differs:
            shutil.rmtree(out)
    elif out.is_dir() and any(out.iterdir()) and not cfg.force:
        raise RagtuneError(
            f"--out {cfg.out} is a folder that holds files but no ragtune run; pass an empty or new folder, "
            "or --force to use it anyway"
        )
    out.mkdir(parents=True, exist_ok=True)
    tmp = record.with_name(f".{RUN_FILE}.tmp")
    tmp.write_text(json.dumps({"identity": inputs}, indent=2) + "\n", encoding="utf-8")
    tmp.replace(record)


def run_identity(cfg: RunConfig) -> dict[str, Any]:
    """What makes a run folder the same run: where its documents come from and which base model it tunes.
    Changed documents in the same folder, a new budget or other systems continue the same run (a rerun
    redoes only what they change)."""
    return {"docs": str(Path(cfg.docs).resolve()), "base": cfg.base, "seed": cfg.seed}


def _differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    return [f"{k}: {old.get(k)!r} then, {new.get(k)!r} now" for k in sorted(new) if old.get(k) != new.get(k)]
