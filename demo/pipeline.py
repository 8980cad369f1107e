"""`ragtune demo` end to end: every step is another stage's public API, run on the embedded defaults.

default generator (SmolLM2-135M-Instruct) → target world → ingest → tune retriever → re-embed index → tune generator (closed-book,
RAFT) → export → serve → evaluate every system over HTTP → refresh the index with the update set
(no retraining) → freshness → forgetting of each fine-tune → report.
"""

from __future__ import annotations

import contextlib
import json
import logging
import random
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demo.config import DemoConfig
from demo.world import make_world, write_world
from ragtune.records import iter_jsonl, write_jsonl

log = logging.getLogger(__name__)

N_STEPS = 11


class Steps:
    """Numbered progress lines with the wall time of each step."""

    def __init__(self, echo: Callable[[str], None], total: int = N_STEPS):
        self.echo, self.total, self.n, self.times = echo, total, 0, {}

    @contextlib.contextmanager
    def __call__(self, title: str):
        self.n += 1
        self.echo(f"[{self.n}/{self.total}] {title} ...")
        t0 = time.perf_counter()
        yield
        dt = time.perf_counter() - t0
        self.times[title] = round(dt, 1)
        self.echo(f"[{self.n}/{self.total}] {title}: done in {dt:.1f} s")


def wordings(src: Path, dst: Path, n: int) -> Path:
    """The training questions asked in the first `n` training wordings of each fact (ids end in :qT)."""
    rows = [o for _, o in iter_jsonl(src) if int(o["id"].rsplit(":q", 1)[1]) < n]
    write_jsonl(dst, rows)
    return dst


def systems(cfg: DemoConfig, urls: dict[str, str], models: dict[str, Path]) -> list[dict[str, Any]]:
    """The seven systems, each over HTTP; `model` names the folder its server serves, so the report can
    read its hash, training time and adapter size, and match it to the forgetting measurement."""
    k = cfg.top_k
    specs = [
        {"name": "base", "url": urls["base"]},
        {"name": "fewshot", "url": urls["base"], "fewshot": cfg.fewshot, "fewshot_seed": cfg.seed},
        {"name": "rag", "url": urls["base"], "retrieval": True, "top_k": k},
        # rag with the few-shot turns: does the base model fail to read, or only to answer briefly?
        {
            "name": "fewshot+rag",
            "url": urls["base"],
            "retrieval": True,
            "top_k": k,
            "fewshot": cfg.fewshot,
            "fewshot_seed": cfg.seed,
        },
        {"name": "ft", "url": urls["ft"]},
        {"name": "ft+rag", "url": urls["ft"], "retrieval": True, "top_k": k},
        {"name": "raft+rag", "url": urls["raft"], "retrieval": True, "top_k": k},
    ]
    served = {url: name for name, url in urls.items()}
    return [{**s, "model": str(models[served[s["url"]]]), "max_tokens": cfg.max_tokens} for s in specs]


def run_demo(
    out_dir: str | Path, cfg: DemoConfig, echo: Callable[[str], None] = print, progress: bool = True
) -> dict[str, Any]:
    """Run the whole demo into `out_dir`; return the summary (also written to `summary.json`)."""
    run = _DemoRun(Path(out_dir), cfg, echo, progress)
    run.prepare()
    index = run.build_index()
    models = run.tune_generators(index)
    test, fresh = run.evaluate(models, index)
    return run.report(models, test, fresh)


class _DemoRun:
    """The demo's phases, in order: prepare (generator, world) → build the index (with the tuned retriever) →
    tune the generators → evaluate over HTTP, refresh, evaluate freshness → forgetting, report, summary."""

    def __init__(self, out: Path, cfg: DemoConfig, echo: Callable[[str], None], progress: bool):
        self.out, self.cfg, self.echo, self.progress = out, cfg, echo, progress
        out.mkdir(parents=True, exist_ok=True)
        if cfg.cpu_threads:
            import torch

            torch.set_num_threads(cfg.cpu_threads)
        self.t_start = time.perf_counter()
        self.step = Steps(echo)
        self.summary: dict[str, Any] = {"preset": cfg.name, "out_dir": str(out)}

    def prepare(self) -> None:
        cfg, out = self.cfg, self.out
        with self.step("prepare the generator"):
            from ragtune.models import is_default, resolve_generator

            self.base_dir = resolve_generator(cfg.generator)
            self.summary["base_model"] = {"dir": str(self.base_dir), "name": cfg.generator}
            what = "the embedded SmolLM2-135M-Instruct" if is_default(cfg.generator) else "the given model"
            self.echo(f"    generator: {what} at {self.base_dir}")

        with self.step("write the target world"):
            self.paths = write_world(
                make_world(cfg.n_people, seed=cfg.seed),
                out / "world",
                n_test=cfg.n_test,
                n_validation=cfg.n_validation,
                update_fraction=cfg.update_fraction,
            )
            self.docs_dir = out / "world" / "knowledge"  # the folder the index follows; refreshed in step 9
            shutil.rmtree(self.docs_dir, ignore_errors=True)
            self.docs_dir.mkdir()
            shutil.copy(self.paths["documents"], self.docs_dir / "people.jsonl")
            qa_dir = out / "world" / "qa"
            self.cb_train = wordings(
                self.paths["train"], qa_dir / "train_closed_book.jsonl", cfg.closed_book_wordings
            )
            self.raft_train = wordings(self.paths["train"], qa_dir / "train_raft.jsonl", cfg.raft_wordings)

    def build_index(self) -> Path:
        """The index, embedded by the fine-tuned retriever (trained on an index of the base one)."""
        from ingest import ingest
        from tuner import train_retriever

        cfg, out = self.cfg, self.out
        index_base, index = out / "index-base", out / "index"
        with self.step("ingest the documents (base retriever)"):
            ingest([self.docs_dir], index_base, show_progress=self.progress)

        with self.step("fine-tune the retriever"):
            r_data = out / "world" / "qa" / "retriever_train.jsonl"
            rows = [obj for _, obj in iter_jsonl(self.paths["train"])]
            write_jsonl(r_data, random.Random(cfg.seed).sample(rows, min(len(rows), cfg.retriever_questions)))
            r = train_retriever(
                r_data,
                index_base,
                out / "retriever",
                epochs=cfg.retriever_epochs,
                batch_size=cfg.retriever_batch_size,
                seed=cfg.seed,
            )
            self.summary["retriever"] = {
                "recall_k": r.recall_k,
                "recall_before": r.recall_before,
                "recall_after": r.recall_after,
                "train_seconds": r.train_seconds,
            }
            ingest(
                [self.docs_dir],
                index,
                retriever=str(out / "retriever"),
                full=True,
                show_progress=self.progress,
            )
        return index

    def tune_generators(self, index: Path) -> dict[str, Path]:
        """The base model and the two exported fine-tunes: closed-book (ft) and RAFT (raft)."""
        from tuner import PEFT_LORA, export_model, train_generator

        cfg, out = self.cfg, self.out
        common = {
            "seed": cfg.seed,
            "val_fraction": 0.0,
            "cpu_threads": cfg.cpu_threads,
            "batch_size": cfg.batch_size,
        }
        if cfg.generator_method in PEFT_LORA:  # the rank is a LoRA setting; other methods refuse it
            common.update(lora_r=cfg.lora_r, lora_alpha=2 * cfg.lora_r)
        models: dict[str, Path] = {"base": self.base_dir}
        self.summary["training"] = {}
        for name in ("ft", "raft"):  # a rerun into the same --out trains afresh: the demo owns these folders
            for folder in ("adapters", "models"):
                shutil.rmtree(out / folder / name, ignore_errors=True)
        with self.step("fine-tune the generator closed-book and export"):
            res = train_generator(
                str(self.base_dir),
                str(self.cb_train),
                str(out / "adapters" / "ft"),
                method=cfg.generator_method,
                mode="closed-book",
                epochs=cfg.generator_epochs,
                learning_rate=cfg.generator_lr,
                **common,
            )
            self.summary["training"]["ft"] = _train_line(res, self.echo)
            models["ft"] = export_model(res.out_dir, out / "models" / "ft")
        with self.step("fine-tune the generator RAFT-style and export"):
            res = train_generator(
                str(self.base_dir),
                str(self.raft_train),
                str(out / "adapters" / "raft"),
                method=cfg.generator_method,
                mode="raft",
                index=str(index),
                k=cfg.top_k,
                epochs=cfg.raft_epochs,
                learning_rate=cfg.raft_lr,
                **common,
            )
            self.summary["training"]["raft"] = _train_line(res, self.echo)
            models["raft"] = export_model(res.out_dir, out / "models" / "raft")
        return models

    def evaluate(self, models: dict[str, Path], index: Path) -> tuple[dict[str, Any], dict[str, Any]]:
        """(test results, freshness results): every system over HTTP, before and after an index refresh."""
        from eval import run_comparison
        from ingest import ingest
        from serve import start_server

        cfg, paths, step = self.cfg, self.paths, self.step
        with contextlib.ExitStack() as stack:
            with step("start the servers"):
                urls = _start_servers(stack, start_server, models, index, self.out / "retriever")
            specs = systems(cfg, urls, models)
            eval_dir = self.out / "eval"
            with step("evaluate every system through HTTP"):
                test = run_comparison(
                    paths["test"],
                    specs,
                    out_dir=eval_dir,
                    train_qa=paths["train"],
                    seed=cfg.seed,
                    progress=self.progress,
                    resume=False,
                )
            with step("refresh the index with the update set (no retraining)"):
                shutil.copy(paths["updated_documents"], self.docs_dir / "people.jsonl")
                rep = ingest(
                    [self.docs_dir], index, retriever=str(self.out / "retriever"), show_progress=self.progress
                )
                self.summary["refresh"] = _jsonable(rep)
                _wait_for_swap(urls.values(), index)
            with step("evaluate freshness on the changed facts"):
                fresh = run_comparison(
                    paths["freshness"],
                    specs,
                    out_dir=eval_dir,
                    split="freshness",
                    seed=cfg.seed,
                    train_qa=paths["train"],
                    progress=self.progress,
                    resume=False,
                )
        return test, fresh

    def report(self, models: dict[str, Path], test: dict[str, Any], fresh: dict[str, Any]) -> dict[str, Any]:
        """Forgetting, the report, and the summary (returned and written to summary.json)."""
        from eval import GENERAL_QA, compute_verdict, forgetting_of, merge_results, write_report

        summary = self.summary
        with self.step("measure forgetting and write the report"):
            tuned = {k: models[k] for k in ("ft", "raft")}  # every fine-tune, the winner's included
            forget = forgetting_of(
                tuned, self.base_dir, GENERAL_QA, seed=self.cfg.seed, progress=self.progress
            )
            results = merge_results(test, fresh, {"forgetting": forget})
            files = write_report(results, self.out / "report")
        summary["wall_seconds"] = round(time.perf_counter() - self.t_start, 1)
        summary["step_seconds"] = self.step.times
        summary["report"] = {k: str(v) for k, v in files.items()}
        summary["headline"] = headline(results)
        summary["verdict"] = [v["text"] for v in compute_verdict(results)["splits"].values() if v.get("text")]
        summary["freshness_new_vs_stale"] = {
            name: {k: v.get("freshness", {}).get(f"{k}_rate", {}).get("mean") for k in ("new", "stale")}
            for name, v in results["splits"].get("freshness", {}).get("systems", {}).items()
        }
        summary["forgetting"] = {f["name"]: f["forgetting"] for f in forget}
        (self.out / "summary.json").write_text(json.dumps(summary, indent=2, default=str), encoding="utf-8")
        return summary


def _train_line(res, echo: Callable[[str], None]) -> dict[str, Any]:
    m = res.metrics
    echo(
        f"    {res.n_train} examples, {res.steps} steps in {res.train_seconds:.0f} s ({res.tokens_per_second:.0f} "
        f"tokens/s); loss {m['train_loss_first']:.3f} -> {m['train_loss_last']:.3f}"
    )
    return {
        k: m[k]
        for k in (
            "steps",
            "train_seconds",
            "tokens_per_second",
            "train_loss_first",
            "train_loss_last",
            "n_train",
        )
    }


def _start_servers(
    stack: contextlib.ExitStack, start_server, models: dict[str, Path], index: Path, retriever: Path
) -> dict[str, str]:
    """One `ragtune serve` per model, started concurrently; each is stopped when `stack` closes."""
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(len(models)) as pool:
        futures = {
            name: pool.submit(start_server, model, index, retriever=retriever)
            for name, model in models.items()
        }
    urls, error = {}, None
    for name, fut in futures.items():  # every start has finished: stop the ones that came up if one failed
        if fut.exception() is not None:
            error = error or fut.exception()
            continue
        stack.callback(fut.result().stop)
        urls[name] = fut.result().url
    if error is not None:
        raise error
    return urls


def _jsonable(obj: Any) -> Any:
    to_dict = getattr(obj, "to_dict", None)
    return to_dict() if callable(to_dict) else str(obj)


def _wait_for_swap(urls, index: Path, timeout: float = 60.0) -> None:
    """Wait until every server reports the index's CURRENT version (they poll it and hot-swap)."""
    import httpx

    from retriever import current_version

    want = current_version(index)
    deadline = time.monotonic() + timeout
    pending = set(urls)
    while pending and time.monotonic() < deadline:
        for u in list(pending):
            with contextlib.suppress(httpx.HTTPError, ValueError):
                info = httpx.get(f"{u}/readyz", timeout=5).json()
                if want in json.dumps(info):
                    pending.discard(u)
        if pending:
            time.sleep(0.5)
    if pending:
        log.warning(
            "servers %s did not report index version %s within %.0f s", sorted(pending), want, timeout
        )


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """Per split and system: exact match with its 95% CI, as the report states it."""
    out: dict[str, Any] = {}
    for split, s in results.get("splits", {}).items():
        out[split] = {name: _em(v) for name, v in s.get("systems", {}).items()}
    return out


def _em(v: dict[str, Any]) -> Any:
    for key in ("exact_match", "em"):
        if key in v.get("metrics", v):
            return v.get("metrics", v)[key]
    return None
