"""`ragtune demo` end to end: a generated world handed to the lifecycle `ragtune run` runs, plus freshness.

the default generator (SmolLM2-135M-Instruct) → the target world (documents and QA splits) →
run_lifecycle on them (ingest, retriever LoRA kept where it wins, closed-book and RAFT LoRA with the
world's training wordings, every system evaluated on the held-out wordings, each fine-tune's forgetting) →
freshness: a copy of the index refreshed with the update set (no retraining) and every system asked the
changed facts → the report, winner.json (`ragtune serve --from OUT` serves the winner) and summary.json.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from demo.config import DemoConfig
from demo.world import make_world, write_world
from ragtune.records import iter_jsonl, write_jsonl

SYSTEMS = "base,fewshot,rag,fewshot+rag,ft,ft+rag,raft+rag"


def wordings(src: Path, dst: Path, n: int) -> Path:
    """The training questions asked in the first `n` training wordings of each fact (ids end in :qT)."""
    rows = [o for _, o in iter_jsonl(src) if int(o["id"].rsplit(":q", 1)[1]) < n]
    write_jsonl(dst, rows)
    return dst


def run_config(cfg: DemoConfig, out: Path, qa_dir: Path) -> Any:
    """The lifecycle's settings for the world: its QA splits and each fine-tune's training wordings."""
    from lifecycle import RunConfig, TuneSettings

    return RunConfig(
        docs=str(out / "world" / "knowledge"),
        out=str(out),
        base=cfg.generator,
        systems=SYSTEMS,
        top_k=cfg.top_k,
        fewshot=cfg.fewshot,
        max_tokens=cfg.max_tokens,
        lora_r=cfg.lora_r,
        seed=cfg.seed,
        force=True,  # the demo owns its folder: a rerun continues it (or starts over for another seed)
        qa_dir=str(qa_dir),
        retriever_pairs=cfg.retriever_questions,
        tuning={
            "ft": TuneSettings(
                str(qa_dir / "train_closed_book.jsonl"), cfg.generator_epochs, cfg.generator_lr
            ),
            "raft": TuneSettings(str(qa_dir / "train_raft.jsonl"), cfg.raft_epochs, cfg.raft_lr),
        },
    )


def run_demo(
    out_dir: str | Path, cfg: DemoConfig, echo: Callable[[str], None] = print, progress: bool = True
) -> dict[str, Any]:
    """Run the whole demo into `out_dir`; return the summary (also written to `summary.json`)."""
    from lifecycle import run_lifecycle

    out, t0 = Path(out_dir), time.perf_counter()
    if cfg.cpu_threads:
        import torch

        torch.set_num_threads(cfg.cpu_threads)
    paths = write_demo_world(out, cfg, echo)
    rcfg = run_config(cfg, out, out / "world" / "qa")
    _forget_other_runs(rcfg)
    summary = run_lifecycle(
        rcfg, echo=echo, progress=progress, extra_steps=[_freshness(paths, cfg, progress)]
    )
    return _summary(out, cfg, summary, time.perf_counter() - t0)


def write_demo_world(out: Path, cfg: DemoConfig, echo: Callable[[str], None] = print) -> dict[str, Path]:
    """The world's documents (the folder the run ingests), its QA splits and each fine-tune's wordings."""
    paths = write_world(
        make_world(cfg.n_people, seed=cfg.seed),
        out / "world",
        n_test=cfg.n_test,
        n_validation=cfg.n_validation,
        update_fraction=cfg.update_fraction,
    )
    for name, folder in (("documents", "knowledge"), ("updated_documents", "knowledge-updated")):
        (out / "world" / folder).mkdir(parents=True, exist_ok=True)
        shutil.copy(paths[name], out / "world" / folder / "people.jsonl")
    qa = out / "world" / "qa"
    paths["train_closed_book"] = wordings(
        paths["train"], qa / "train_closed_book.jsonl", cfg.closed_book_wordings
    )
    paths["train_raft"] = wordings(paths["train"], qa / "train_raft.jsonl", cfg.raft_wordings)
    echo(
        f"world: {cfg.n_people} invented people, {cfg.n_test} test and {cfg.n_validation} validation questions, "
        f"{cfg.update_fraction:.0%} of the people with a changed fact ({out / 'world'})"
    )
    return paths


def _forget_other_runs(rcfg: Any) -> None:
    """A demo folder made with another seed or generator is emptied but for the world just written (the
    lifecycle's --force would remove the world too)."""
    from lifecycle.inputs import RUN_FILE, run_identity

    record = Path(rcfg.out) / RUN_FILE
    if record.is_file() and json.loads(record.read_text(encoding="utf-8")).get("identity") != run_identity(
        rcfg
    ):
        for p in Path(rcfg.out).iterdir():
            if p.name != "world":
                shutil.rmtree(p) if p.is_dir() else p.unlink()


def _freshness(paths: dict[str, Path], cfg: DemoConfig, progress: bool) -> Callable[[Any], dict[str, Any]]:
    """The demo's extra step: a copy of the run's index refreshed with the update set (only the changed
    documents are embedded; nothing is retrained), then every system asked exactly the changed facts."""

    def step(run: Any) -> dict[str, Any]:
        from lifecycle.hashes import docs_hash, file_hash, model_fingerprint

        out = run.out
        result = out / "eval" / "freshness.json"
        key = {
            "index": run.index_version(),
            "updated": docs_hash(str(out / "world" / "knowledge-updated")),
            "qa": file_hash(paths["freshness"]),
            "specs": run.system_specs(),
            "models": {k: model_fingerprint(p) for k, p in run.models.items()},
        }

        def go() -> dict[str, Any]:
            from eval import run_comparison
            from ingest import ingest

            fresh = out / "index-fresh"
            shutil.rmtree(fresh, ignore_errors=True)
            shutil.copytree(run.index, fresh)
            retriever = str(run.retriever) if run.retriever else None
            rep = ingest(
                [out / "world" / "knowledge-updated"], fresh, retriever=retriever, show_progress=progress
            )
            specs = [{**s, "index": str(fresh)} if s.get("retrieval") else s for s in run.system_specs()]
            shutil.rmtree(out / "eval" / "predictions" / "freshness", ignore_errors=True)
            res = run_comparison(
                paths["freshness"], specs, out_dir=out / "eval", split="freshness", train_qa=run.train_qa,
                seed=cfg.seed, progress=progress, metric=run.cfg.metric,
            )  # fmt: skip
            tmp = result.with_name(".freshness.json.tmp")
            tmp.write_text(json.dumps(res, default=str) + "\n", encoding="utf-8")
            tmp.replace(result)
            return {"refresh": rep.to_dict(), "index": str(fresh)}

        rec = run.steps.run(
            "freshness", "refresh a copy of the index with the update set (no retraining), ask the changed facts",
            key, go, [result],
        )  # fmt: skip
        plan = rec["refresh"]["plan"]
        run.echo(
            f"    index refreshed to {rec['refresh']['version']}: {plan['changed']} documents changed, "
            f"{plan['unchanged']} unchanged; {rec['refresh']['chunks_embedded']} chunks embedded"
        )
        return json.loads(result.read_text(encoding="utf-8"))

    return step


def _summary(out: Path, cfg: DemoConfig, run: dict[str, Any], wall: float) -> dict[str, Any]:
    """The run's summary with the demo's headline figures, written to OUT/summary.json."""
    from eval import compute_verdict
    from ragtune.models import resolve_generator

    results = json.loads((out / "report" / "results.json").read_text(encoding="utf-8"))
    base_dir = resolve_generator(cfg.generator)
    summary = {
        **run,
        "preset": cfg.name,
        "out_dir": str(out),
        "base_model": {"dir": str(base_dir), "name": cfg.generator},
        "wall_seconds": round(wall, 1),
        "headline": headline(results),
        "verdict": [v["text"] for v in compute_verdict(results)["splits"].values() if v.get("text")],
        "freshness_new_vs_stale": {
            name: {k: v.get("freshness", {}).get(f"{k}_rate", {}).get("mean") for k in ("new", "stale")}
            for name, v in results["splits"].get("freshness", {}).get("systems", {}).items()
        },
        "forgetting": {f["name"]: f["forgetting"] for f in results.get("forgetting") or []},
        "refresh": json.loads((out / "steps.json").read_text(encoding="utf-8"))["freshness"]["result"][
            "refresh"
        ],
    }
    tmp = out / ".summary.json.tmp"
    tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    tmp.replace(out / "summary.json")
    return summary


def headline(results: dict[str, Any]) -> dict[str, Any]:
    """Per split and system: exact match with its 95% CI, as the report states it."""
    return {
        split: {name: v.get("metrics", {}).get("exact_match") for name, v in s.get("systems", {}).items()}
        for split, s in results.get("splits", {}).items()
    }
