"""Preference tuning (`ragtune tune generator --objective dpo`): TRL's DPOTrainer on prompt/chosen/rejected
pairs, with the same LoRA wrapping, checkpoints, resume and export as supervised tuning.

A pair is one JSON line (TRL's conversational preference format, which `ragtune feedback export` writes):
    {"id", "prompt": [{"role", "content"}, ...], "chosen": [{"role": "assistant", "content"}],
     "rejected": [{"role": "assistant", "content"}], "doc_ids"?: [...]}
`chosen`/`rejected` may also be plain strings. The prompt is rendered by the model's own chat template (TRL
applies it), exactly as the server renders it; DPO scores only the completions' tokens.
"""

from __future__ import annotations

import logging
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.records import RecordError, iter_jsonl
from tuner.gen_data import ROLES, TrainExample, split_by_document

log = logging.getLogger(__name__)
MAX_REPORTED = 10


def _completion(v: Any, name: str, where: str) -> list[dict[str, str]]:
    if isinstance(v, str) and v.strip():
        return [{"role": "assistant", "content": v}]
    if (
        isinstance(v, list)
        and len(v) == 1
        and isinstance(v[0], dict)
        and v[0].get("role") == "assistant"
        and isinstance(v[0].get("content"), str)
        and v[0]["content"].strip()
    ):
        return [{"role": "assistant", "content": v[0]["content"]}]
    raise RecordError(f'{where}: `{name}` must be a non-empty string or [{{"role": "assistant", "content"}}]')


def pair_from_dict(obj: dict[str, Any], where: str) -> dict[str, Any]:
    """Validate one preference line; returns {id, prompt, chosen, rejected, doc_ids}."""
    prompt = obj.get("prompt")
    if isinstance(prompt, str) and prompt.strip():
        prompt = [{"role": "user", "content": prompt}]
    if not isinstance(prompt, list) or not prompt:
        raise RecordError(
            f"{where}: `prompt` must be a non-empty list of {{role, content}} messages or a string"
        )
    for i, m in enumerate(prompt):
        if not isinstance(m, dict) or m.get("role") not in ROLES or not isinstance(m.get("content"), str):
            raise RecordError(f"{where}: prompt[{i}] must be {{role: one of {list(ROLES)}, content: string}}")
    if prompt[-1]["role"] != "user":
        raise RecordError(
            f"{where}: the prompt's last message must be the user's (got {prompt[-1]['role']!r})"
        )
    chosen = _completion(obj.get("chosen"), "chosen", where)
    rejected = _completion(obj.get("rejected"), "rejected", where)
    if chosen[0]["content"].strip() == rejected[0]["content"].strip():
        raise RecordError(f"{where}: `chosen` and `rejected` are the same text; a pair must differ")
    doc_ids = obj.get("doc_ids") or []
    if not isinstance(doc_ids, list):
        raise RecordError(f"{where}: `doc_ids` must be a list of document ids, got {doc_ids!r}")
    return {
        "id": str(obj.get("id", where)),
        "prompt": [{"role": m["role"], "content": m["content"]} for m in prompt],
        "chosen": chosen,
        "rejected": rejected,
        "doc_ids": [str(d) for d in doc_ids],
    }


def load_preferences(path: str) -> list[dict[str, Any]]:
    """Every pair of a preference .jsonl; a RagtuneError listing every bad line at once."""
    out, errors, seen = [], [], set()
    try:
        for lineno, obj in iter_jsonl(path):
            obj.setdefault("id", f"line{lineno}")
            try:
                pair = pair_from_dict(obj, f"{path}:{lineno}")
            except RecordError as e:
                errors.append(str(e))
                continue
            if pair["id"] in seen:
                errors.append(f"{path}:{lineno}: duplicate id {pair['id']!r}; ids must be unique")
                continue
            seen.add(pair["id"])
            out.append(pair)
    except RecordError as e:  # a missing file or malformed JSON: the reader cannot go on
        errors.append(str(e))
    if errors:
        more = f"\n  ... and {len(errors) - MAX_REPORTED} more" if len(errors) > MAX_REPORTED else ""
        raise RagtuneError(
            f"{path}: {len(errors)} bad preference line(s) (objective dpo reads prompt/chosen/rejected):\n  "
            + "\n  ".join(errors[:MAX_REPORTED])
            + more
        )
    if not out:
        raise RagtuneError(f"{path}: no preference pairs; the file is empty")
    return out


def build_pairs(cfg: Any, tokenizer: Any) -> tuple[list[dict], list[dict], dict[str, Any]]:
    """(train, validation, info): the pairs of cfg.data, split by source document like SFT data."""
    from ragtune.hashing import data_hash

    files = [t["data"] for t in cfg.task_list()]
    if len(files) != 1:
        raise RagtuneError(f"objective dpo reads one preferences .jsonl; got {len(files)} --data files")
    pairs = load_preferences(files[0])
    shells = [TrainExample(p["id"], [], tuple(p["doc_ids"])) for p in pairs]
    train_s, val_s = split_by_document(shells, cfg.val_fraction, cfg.seed)
    by_id = {p["id"]: p for p in pairs}
    keep = ("prompt", "chosen", "rejected")
    train = [{k: by_id[s.id][k] for k in keep} for s in train_s]
    val = [{k: by_id[s.id][k] for k in keep} for s in val_s]
    lengths = [
        len(tokenizer.apply_chat_template(p["prompt"] + p["chosen"], tokenize=True, return_dict=False))
        for p in train[:64]
    ]
    info = {
        "data_hash": data_hash(files),
        "data_files": files,
        "index_versions": {},
        "tasks": [{"data": files[0], "objective": "dpo", "n": len(pairs)}],
        "avg_tokens": sum(lengths) / max(1, len(lengths)),
    }
    return train, val, info


def dpo_trainer(
    cfg: Any, model: Any, tokenizer: Any, train: list[dict], val: list[dict], dtype: Any, callbacks: list
) -> Any:
    """TRL's DPOTrainer over the already wrapped (LoRA) model: the reference is the same model with its
    adapter switched off, so no second copy of the weights is held."""
    from pathlib import Path

    from datasets import Dataset
    from trl import DPOConfig, DPOTrainer

    from tuner import runtime

    args = runtime.training_arguments(
        cfg,
        Path(cfg.out_dir) / runtime.CHECKPOINTS,
        dtype,
        bool(val),
        cls=DPOConfig,
        beta=cfg.beta,
        max_length=cfg.max_length or 1024,
        remove_unused_columns=True,  # TRL's collator reads only its token columns
        label_names=[],
        precompute_ref_log_probs=False,
    )
    return DPOTrainer(
        model=model,
        args=args,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(val) if val else None,
        processing_class=tokenizer,
        callbacks=callbacks,
    )
