"""run_comparison: answer the same questions with every system, cache, score, compare.

Predictions are cached per system in `OUT/predictions/<split>/<system>.jsonl` (appended batch by
batch), next to `<system>.config.json`, the exact configuration that made them. A rerun with the
same configuration reuses them, so an interrupted run resumes where it stopped; a changed
configuration (model bytes, index version, prompt, seed, ...) discards them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from eval import scoring
from eval.answers import GUARD_TEXT, verdict_metric
from eval.backends import _Cache, message_builder, open_backend
from eval.systems import SystemSpec, as_spec
from ragtune.errors import RagtuneError
from ragtune.records import QAExample, RecordError, iter_jsonl, load_qa

logger = logging.getLogger(__name__)

RESULTS_VERSION = 1


def load_examples(
    qa: str | Path | Sequence[QAExample], what: str = "QA"
) -> tuple[list[QAExample], dict[str, Any]]:
    """QA examples and a description (path, sha256, n); bad records become a RagtuneError."""
    if isinstance(qa, (str, Path)):
        p = Path(qa)
        if not p.is_file():
            raise RagtuneError(f"{what} file {p} does not exist")
        try:
            examples = load_qa(p)
        except RecordError as e:
            raise RagtuneError(f"{e}") from None
        desc = {"path": str(p), "sha256": hashlib.sha256(p.read_bytes()).hexdigest()}
    else:
        examples = list(qa)
        blob = json.dumps([[e.id, e.question, list(e.answers)] for e in examples]).encode()
        desc = {"path": None, "sha256": hashlib.sha256(blob).hexdigest()}
    ids = [e.id for e in examples]
    dup = sorted({i for i in ids if ids.count(i) > 1}) if len(set(ids)) != len(ids) else []
    if dup:
        raise RagtuneError(f"{what}: question ids must be unique; repeated: {dup[:5]}")
    return examples, {**desc, "n": len(examples)}


def _fewshot(
    spec: SystemSpec, train: list[QAExample] | None, test_ids: set[str], test_questions: set[str]
) -> list[tuple[str, str]]:
    if spec.fewshot == 0:
        return []
    if not train:
        raise RagtuneError(
            f"system {spec.name!r} asks for {spec.fewshot} few-shot examples; pass the training split "
            f"with --train TRAIN.jsonl"
        )
    pool = [e for e in train if e.id not in test_ids and e.question not in test_questions]  # no leakage
    if len(pool) < spec.fewshot:
        raise RagtuneError(
            f"system {spec.name!r}: {spec.fewshot} few-shot examples asked, the training split has "
            f"{len(pool)} usable"
        )
    picked = random.Random(spec.fewshot_seed).sample(pool, spec.fewshot)
    return [(e.question, e.answer) for e in picked]


def _check_doc_ids(examples: Sequence[QAExample], backends: Mapping[str, Any]) -> None:
    for name, b in backends.items():
        retr = getattr(b, "retriever", None)
        if retr is None:
            continue
        known = set(retr.index.documents)
        unknown = sorted({d for e in examples for d in e.doc_ids if d not in known})
        if unknown:
            raise RagtuneError(
                f"the QA file names {len(unknown)} document id(s) that index {retr.index.dir} "
                f"(version {retr.version}, used by system {name!r}) does not hold, e.g. {unknown[:5]}; "
                f"fix the QA file's doc_ids or ingest those documents"
            )
        return


def _read_cache(path: Path, config_path: Path, key: str) -> dict[str, dict[str, Any]]:
    if not path.is_file():
        return {}
    try:
        same = json.loads(config_path.read_text(encoding="utf-8")).get("cache_key") == key
    except (OSError, json.JSONDecodeError):
        same = False
    if not same:
        logger.info("configuration changed: discarding cached predictions %s", path)
        path.unlink()
        return {}
    rows: dict[str, dict[str, Any]] = {}
    try:
        for _, row in iter_jsonl(path):
            rows[str(row["id"])] = row
    except RecordError:  # a run killed mid-write leaves a torn last line: keep what parsed
        logger.warning("ignoring a torn line at the end of %s", path)
    return rows


def _generate(
    name: str,
    backend: Any,
    spec: SystemSpec,
    examples: list[QAExample],
    shots,
    out: Path,
    seed: int,
    batch_size: int,
    progress: bool,
    resume: bool,
) -> tuple[dict[str, dict], dict[str, Any], int]:
    from tqdm.auto import tqdm

    describe = backend.describe()
    key_src = {
        "spec": {k: v for k, v in spec.to_dict().items() if k not in ("name", "api_key", "url")},
        "describe": {k: v for k, v in describe.items() if k not in ("artifact",)},
        "seed": seed,
        "shots": shots,
    }
    key = hashlib.sha256(json.dumps(key_src, sort_keys=True, default=str).encode()).hexdigest()
    safe = re.sub(r"[^A-Za-z0-9_.+@=-]", "_", name)  # a system name is free text; a file name is not
    path, cfg_path = out / f"{safe}.jsonl", out / f"{safe}.config.json"
    cached = _read_cache(path, cfg_path, key) if resume else {}
    if not resume and path.exists():
        path.unlink()
    cfg_path.write_text(
        json.dumps({"cache_key": key, **key_src, "name": name}, indent=1, default=str), encoding="utf-8"
    )
    todo = [e for e in examples if e.id not in cached]
    build = message_builder(spec, shots)
    # In process: one batch through the model. Over HTTP: `batch_size` requests in flight at once, as
    # concurrent clients would send them; the server batches them.
    step = batch_size
    with (
        path.open("a", encoding="utf-8") as f,
        tqdm(
            total=len(examples),
            initial=len(examples) - len(todo),
            desc=f"eval {name}",
            disable=not progress,
            unit="q",
        ) as bar,
    ):
        for i in range(0, len(todo), step):
            batch = todo[i : i + step]
            rows = backend.answer([e.question for e in batch], build, seed)
            for j, (e, r) in enumerate(zip(batch, rows)):
                r = {"id": e.id, **r, "batch_wall_s": r["latency_s"], "batch_first": j == 0}
                cached[e.id] = r
                f.write(json.dumps(r, ensure_ascii=False) + "\n")
            f.flush()
            bar.update(len(batch))
    return cached, describe, len(todo)


def run_comparison(
    qa: str | Path | Sequence[QAExample],
    systems: Sequence[SystemSpec | Mapping[str, Any]],
    *,
    out_dir: str | Path,
    train_qa: str | Path | Sequence[QAExample] | None = None,
    split: str = "test",
    seed: int = 0,
    n_resamples: int = 1000,
    batch_size: int = 8,
    progress: bool = True,
    resume: bool = True,
    metric: str | None = None,
    judge: Any | None = None,
) -> dict[str, Any]:
    """Answer `qa` with every system, score, and compare (see eval/__init__.py). Returns results.

    `metric` (em, f1, contains, judge; default contains) is recorded as the verdict's metric and orders
    the disagreements; `judge` (an eval.judge.Judge) grades every reply, as the `judge` metric."""
    specs = [as_spec(s) for s in systems]
    if not specs:
        raise RagtuneError("no systems to evaluate")
    metric = verdict_metric(metric)
    if metric == "judge" and judge is None:
        raise RagtuneError("the verdict metric `judge` needs a judge model: pass --judge URL|FOLDER")
    examples, qa_desc = load_examples(qa)
    train = load_examples(train_qa, "training QA")[0] if train_qa is not None else None
    ids, questions = {e.id for e in examples}, {e.question for e in examples}
    shots = {s.name: _fewshot(s, train, ids, questions) for s in specs}
    per_system, systems_out, judged = _answer_all(
        specs,
        examples,
        shots,
        Path(out_dir) / "predictions" / split,
        seed,
        n_resamples,
        batch_size,
        progress,
        resume,
        judge,
    )
    comparison = {
        "qa": qa_desc,
        "systems": systems_out,
        "comparisons": scoring.pairwise(per_system, n_resamples, seed),
        "disagreements": scoring.disagreements(examples, per_system, metric),
        "per_question": per_system,
    }
    if judge is not None:  # the prompt and counts here; each raw verdict in its per-question row
        comparison["judge"] = {**judge.describe(), "per_system": judged}
    config = {"seed": seed, "n_resamples": n_resamples, "batch_size": batch_size, "ci": 0.95}
    config.update(metric=metric, contains_guard=GUARD_TEXT)
    return {"ragtune_eval": RESULTS_VERSION, "config": config, "splits": {split: comparison}}


def _answer_all(
    specs: Sequence[SystemSpec],
    examples: list[QAExample],
    shots: Mapping[str, Any],
    out: Path,
    seed: int,
    n_resamples: int,
    batch_size: int,
    progress: bool,
    resume: bool,
    judge: Any | None,
) -> tuple[dict[str, list[dict]], dict[str, Any], dict[str, dict[str, int]]]:
    """Every system's answers (generated or cached), scored (and judged): per-question rows, the
    systems' results and the judge's counts."""
    cache, backends = _Cache(), {}
    per_system: dict[str, list[dict]] = {}
    systems_out: dict[str, Any] = {}
    judged: dict[str, dict[str, int]] = {}
    try:
        for s in specs:  # every check before the first generated token
            backends[s.name] = open_backend(s, cache)
        _check_doc_ids(examples, backends)
        out.mkdir(parents=True, exist_ok=True)
        for s in specs:
            preds, describe, generated = _generate(
                s.name, backends[s.name], s, examples, shots[s.name], out, seed, batch_size, progress, resume
            )
            rows = scoring.score_rows(examples, preds)
            if judge is not None:
                judged[s.name] = judge.score(examples, rows)
            per_system[s.name] = rows
            systems_out[s.name] = _system_result(
                s, describe, shots[s.name], examples, preds, rows, generated, n_resamples, seed
            )
    finally:
        for b in backends.values():
            b.close()
    return per_system, systems_out, judged


def _system_result(
    s: SystemSpec,
    describe: Mapping[str, Any],
    shots: Sequence[tuple[str, str]],
    examples: Sequence[QAExample],
    preds: Mapping[str, Mapping[str, Any]],
    rows: list[dict],
    generated: int,
    n_resamples: int,
    seed: int,
) -> dict[str, Any]:
    """One system's entry in results.json: its spec, metrics with CIs, and cost."""
    return {
        "spec": s.to_dict(),
        "describe": describe,
        "fewshot_questions": [q for q, _ in shots],
        "generated": generated,
        "cached": len(examples) - generated,
        **scoring.aggregate(rows, n_resamples, seed),
        "cost": {
            **scoring.cost([preds[e.id] for e in examples if e.id in preds]),
            **training_info(s, describe),
        },
    }


def training_info(spec: SystemSpec, describe: Mapping[str, Any]) -> dict[str, Any]:
    """Training time, trainable parameters and adapter size, where the model's ragtune.json records them."""
    art = describe.get("artifact") or {}
    found = {
        **{k: v for k, v in art.items() if not isinstance(v, (dict, list))},
        **(art.get("metrics") or {}),
        **(art.get("training") or {}),
    }
    out = {}
    for want, names in {
        "train_time_s": ("train_seconds", "train_time_s", "train_runtime", "training_time_s"),
        "trainable_params": ("trainable_params", "trainable_parameters"),
        "total_params": ("total_params", "all_params"),
        "adapter_bytes": ("adapter_bytes", "adapter_size_bytes"),
        "method": ("method",),
    }.items():
        v = next((found[n] for n in names if n in found), None)
        if v is not None:
            out[want] = v
    if spec.model and "adapter_bytes" not in out:  # the adapter itself, or the one a merged model came from
        for folder in (Path(spec.model), Path(str(art.get("source_adapter") or spec.model))):
            ad = folder / "adapter_model.safetensors"
            if ad.is_file():
                out["adapter_bytes"] = ad.stat().st_size
                break
    return out


def merge_results(*results: Mapping[str, Any]) -> dict[str, Any]:
    """One results dict from several runs (e.g. test + freshness + forgetting); later runs win on clashes."""
    merged: dict[str, Any] = {"ragtune_eval": RESULTS_VERSION, "config": {}, "splits": {}}
    for r in results:
        merged["config"].update(r.get("config", {}))
        merged["splits"].update(r.get("splits", {}))
        for k, v in r.items():
            if k not in ("config", "splits", "ragtune_eval"):
                merged[k] = v
    return merged


def score_predictions(
    qa: str | Path | Sequence[QAExample],
    predictions: str | Path | Mapping[str, Any],
    n_resamples: int = 1000,
    seed: int = 0,
) -> dict[str, Any]:
    """Score predictions made elsewhere (`{"id", "prediction", "passages"?}` per line) without any model."""
    examples, desc = load_examples(qa)
    if isinstance(predictions, (str, Path)):
        p = Path(predictions)
        if not p.is_file():
            raise RagtuneError(f"predictions file {p} does not exist")
        preds: dict[str, Any] = {}
        try:
            for lineno, row in iter_jsonl(p):
                if "id" not in row or not isinstance(row.get("prediction"), str):
                    raise RagtuneError(f"{p}:{lineno}: each line needs `id` and a string `prediction`")
                preds[str(row["id"])] = row
        except RecordError as e:
            raise RagtuneError(str(e)) from None
    else:
        preds = {str(k): (v if isinstance(v, dict) else {"prediction": v}) for k, v in predictions.items()}
    known = {e.id for e in examples}
    extra = sorted(set(preds) - known)
    rows = scoring.score_rows(examples, preds)
    agg = scoring.aggregate(rows, n_resamples, seed)
    return {
        "qa": desc,
        "n": agg["n"],
        "missing": agg["missing"],
        "unknown_ids": len(extra),
        **{m: v["mean"] for m, v in agg["metrics"].items()},
        "ci": agg["metrics"],
        **({"freshness": agg["freshness"]} if "freshness" in agg else {}),
    }
