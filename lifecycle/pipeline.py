"""`run_lifecycle`: the user's documents through the whole lifecycle, every step a stage's public API.

check the inputs → ingest (refresh) the index → plan the budget → QA pairs (synth, split by document) →
retriever LoRA (kept only where it wins on validation) → RAFT / closed-book LoRA and export → evaluate
every system on the synthetic test split and the user's questions → forgetting of every fine-tune on general
questions → report, verdict, winner.json.

Each step is keyed by the hash of its inputs and settings (lifecycle/steps.py): a rerun with the same
inputs redoes nothing, and after documents change only what depends on them runs again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from lifecycle import budget, inputs
from lifecycle.config import RunConfig
from lifecycle.hashes import docs_hash, file_hash, model_fingerprint
from lifecycle.steps import StepStore
from lifecycle.winner import choose_winner, serve_command
from ragtune.records import iter_jsonl

log = logging.getLogger(__name__)

N_STEPS = 9  # check, ingest, synth, retriever, raft, ft, evaluate, forgetting, report


def run_lifecycle(
    cfg: RunConfig,
    echo: Callable[[str], None] = print,
    progress: bool = True,
    extra_steps: Sequence[Callable[[Any], dict[str, Any]]] = (),
) -> dict[str, Any]:
    """Run (or resume, or refresh) the lifecycle into `cfg.out`; return the summary (RUN/summary.json).

    `extra_steps`: functions of the run, called after the forgetting check, in order; each runs its own
    keyed step (`run.steps.run`) and returns a results part merged into the report (the demo's freshness
    split). What they may read of the run: `out`, `cfg`, `echo`, `steps`, `models`, `index`, `retriever`,
    `train_qa`, `system_specs()`, `index_version()`."""
    run = _Run(cfg, echo, progress, len(extra_steps))
    run.check()
    run.build_index()
    run.write_questions()
    run.tune_retriever()
    run.tune_generators()
    run.evaluate()
    run.measure_forgetting()
    parts = [step(run) for step in extra_steps]
    return run.conclude(parts)


class _Run:
    def __init__(self, cfg: RunConfig, echo: Callable[[str], None], progress: bool, n_extra: int = 0):
        self.cfg, self.echo, self.progress = cfg, echo, progress
        self.total = N_STEPS + n_extra
        self.out = Path(cfg.out)
        self.t0 = time.perf_counter()
        self.notes: list[str] = []

    # --- 1. inputs -------------------------------------------------------------------------------------
    def check(self) -> None:
        cfg = self.cfg
        self.echo(f"[1/{self.total}] check the inputs ...")
        t0 = time.perf_counter()
        doc_ids = inputs.check_documents(cfg.docs)
        n_docs = len(doc_ids)
        self.n_user_qa = inputs.check_qa(cfg.qa, doc_ids)
        self.base_dir = inputs.check_base(cfg.base)
        budget.check_budget(cfg.budget_minutes, cfg.trains("raft") or cfg.trains("ft"))
        inputs.check_run_folder(cfg, inputs.run_identity(cfg))
        self.steps = StepStore(self.out, self.echo, self.total)
        self.steps.n = 1
        self.docs_key = docs_hash(cfg.docs)
        self.base_key = model_fingerprint(self.base_dir)
        self.echo(
            f"[1/{self.total}] check the inputs: {n_docs} documents"
            + (f", {self.n_user_qa} questions of yours" if self.n_user_qa else "")
            + f", base {cfg.base} ({time.perf_counter() - t0:.1f} s)"
        )

    # --- 2. index --------------------------------------------------------------------------------------
    def build_index(self) -> None:
        def ingest_base() -> dict[str, Any]:
            from ingest import ingest

            rep = ingest([self.cfg.docs], self.out / "index-base", show_progress=self.progress)
            return {"version": rep.version, "chunks": rep.chunks, "documents": rep.documents, **rep.counts}

        self.index_base = self.steps.run(
            "ingest", "ingest the documents (refresh: only changed ones are embedded)", {"docs": self.docs_key},
            ingest_base, [self.out / "index-base"],
        )  # fmt: skip
        self.plan = budget.make_plan(
            self.cfg.budget_minutes,
            self.index_base["chunks"],
            self.cfg.system_names(),
            self.cfg.trains("raft") or self.cfg.trains("ft"),
            self.n_user_qa or 0,
        )
        self.notes += self.plan.cuts

    # --- 3. questions ----------------------------------------------------------------------------------
    def write_questions(self) -> None:
        if self.cfg.qa_dir:
            self._given_questions()
            return
        from synth import SynthConfig

        cfg = self.cfg
        scfg = SynthConfig(
            index=str(self.out / "index-base"),
            out_dir=str(self.out / "qa"),
            generator=cfg.synth_generator,
            api_key=cfg.synth_api_key,
            max_chunks=self.plan.max_chunks if self.plan.max_chunks < self.plan.chunks else None,
            questions_per_chunk=self.plan.questions_per_chunk,
            seed=cfg.seed,
            read_back=cfg.read_back,
        )

        def synth() -> dict[str, Any]:
            from synth import synthesize

            rep = synthesize(scfg, progress=self.progress)
            self.echo("    " + rep.summary().replace("\n", "\n    "))
            return {"kept": rep.kept, "chunks": rep.chunks, "splits": rep.splits, "dropped": rep.dropped}

        key = {
            "index": self.index_base["version"],
            "synth": scfg.public(),
            "generator": self._synth_gen_key(),
        }
        self.qa = self.steps.run(
            "synth", "write and check question-answer pairs from the chunks", key, synth, [self.out / "qa"]
        )
        splits = self.qa["splits"]
        short = [s for s in ("train", "test") if not splits.get(s, {}).get("pairs")]
        if short:
            from ragtune.errors import RagtuneError

            raise RagtuneError(
                f"the question writer kept {self.qa['kept']} pairs and the {' and '.join(short)} split(s) got "
                f"none (pairs come from {sum(s['documents'] for s in splits.values())} documents): add "
                "documents, raise --budget-minutes so more chunks are asked about, or use a larger "
                "--synth-generator"
            )
        self.train_qa, self.val_qa = self.out / "qa" / "train.jsonl", self.out / "qa" / "validation.jsonl"
        self.test_qa = self.out / "qa" / "test.jsonl"

    def _given_questions(self) -> None:
        """The given QA splits (RunConfig.qa_dir) stand for the written ones: no question is written."""
        qa_dir = Path(self.cfg.qa_dir)
        self.train_qa, self.val_qa, self.test_qa = (
            qa_dir / f"{s}.jsonl" for s in ("train", "validation", "test")
        )
        splits = {}
        for name, path in (("train", self.train_qa), ("validation", self.val_qa), ("test", self.test_qa)):
            rows = [o for _, o in iter_jsonl(path)] if path.is_file() else []
            docs = {d for r in rows for d in r.get("doc_ids") or []}
            splits[name] = {"pairs": len(rows), "documents": len(docs)}
        if not splits["train"]["pairs"] or not splits["test"]["pairs"]:
            from ragtune.errors import RagtuneError

            raise RagtuneError(f"the given QA folder {qa_dir} needs train.jsonl and test.jsonl with rows")
        self.qa = {"given": str(qa_dir), "kept": sum(v["pairs"] for v in splits.values()), "splits": splits}
        self.steps.n += 1
        self.echo(
            f"[{self.steps.n}/{self.total}] questions: given in {qa_dir} ("
            + ", ".join(f"{k} {v['pairs']}" for k, v in splits.items())
            + "), none written"
        )

    def _synth_gen_key(self) -> str:
        g = self.cfg.synth_generator
        return g if g.startswith(("http://", "https://")) else model_fingerprint(self._synth_dir())

    def _synth_dir(self) -> Path:
        from ragtune.models import resolve_generator

        return resolve_generator(self.cfg.synth_generator, what="--synth-generator")

    # --- 4. retriever ----------------------------------------------------------------------------------
    def tune_retriever(self) -> None:
        """The index every retrieval system uses: the tuned retriever's when it wins on validation."""
        from lifecycle.retrieval import choose_retriever

        self.index, self.retriever = self.out / "index-base", None
        has_val = self.qa["splits"].get("validation", {}).get("pairs", 0) > 0
        if not self.cfg.tune_retriever or not has_val:
            if self.cfg.tune_retriever:
                self.notes.append("the retriever was not tuned: the validation split got no pairs")
            self.steps.n += 1
            return
        key = {
            "train": file_hash(self.train_qa),
            "validation": file_hash(self.val_qa),
            "docs": self.docs_key,
            "index": self.index_base["version"],
            "seed": self.cfg.seed,
            "k": self.cfg.top_k,
            "pairs": self.cfg.retriever_pairs,
        }
        res = self.steps.run(
            "retriever",
            "fine-tune the retriever (kept only where it wins on validation)",
            key,
            lambda: choose_retriever(
                self.cfg.docs, self.out, self.train_qa, self.val_qa, self.cfg, self.progress
            ),
            [self.out / "index-base"],
        )
        self.echo(f"    {res['text']}")
        if res["kept"]:
            self.index, self.retriever = self.out / "index-tuned", self.out / "retriever"

    # --- 5. generators ---------------------------------------------------------------------------------
    def tune_generators(self) -> None:
        self.models: dict[str, Path] = {"base": self.base_dir}
        self.training: dict[str, Any] = {}
        for kind, mode, title in (
            ("raft", "raft", "fine-tune the generator RAFT-style (LoRA) and export"),
            ("ft", "closed-book", "fine-tune the generator closed-book (LoRA) and export"),
        ):
            if not self.cfg.trains(kind):
                self.steps.n += 1  # the step numbers stay those of a run that trains both
                self.echo(f"[{self.steps.n}/{self.total}] {title}: not asked (no {kind} system in --systems)")
                continue
            self.models[kind], self.training[kind] = self._tune(kind, mode, title)

    def _tune(self, kind: str, mode: str, title: str) -> tuple[Path, dict[str, Any]]:
        from lifecycle.training import train_and_export

        cfg, given = self.cfg, self.cfg.tune(kind)
        train_qa = Path(given.train) if given.train else self.train_qa
        lr = given.learning_rate or cfg.learning_rate
        if given.epochs:
            epochs = given.epochs
        else:
            n_train = sum(1 for _ in iter_jsonl(train_qa))
            per_example = budget.TRAIN_S_PER_EXAMPLE if kind == "raft" else budget.CLOSED_BOOK_S_PER_EXAMPLE
            plan = budget.Plan(**{**self.plan.to_dict(), "cuts": []})
            plan.max_train_examples = int(
                self.plan.max_train_examples * budget.TRAIN_S_PER_EXAMPLE / per_example
            )
            epochs, cut = budget.epochs_for(plan, n_train, 3.0)
            if cut:
                self.notes.append(f"{kind}: {cut}")
        key = {
            "base": self.base_key,
            "train": file_hash(train_qa),
            "index": self.index_version() if kind == "raft" else None,
            "epochs": epochs,
            "settings": [cfg.lora_r, lr, cfg.top_k, cfg.seed],
        }
        model_dir = self.out / "models" / kind

        def run() -> dict[str, Any]:
            return train_and_export(
                self.base_dir, train_qa, self.out, kind, mode, epochs, cfg, learning_rate=lr,
                index=self.index if kind == "raft" else None, echo=self.echo,
            )  # fmt: skip

        res = self.steps.run(kind, title, key, run, [model_dir])
        return model_dir, res

    def index_version(self) -> str:
        from retriever import current_version

        return current_version(self.index)

    # --- 6. evaluation ---------------------------------------------------------------------------------
    def evaluate(self) -> dict[str, Any]:
        from lifecycle.evaluation import evaluate_systems, sample_test

        test = sample_test(self.test_qa, self.out / "eval" / "test_sample.jsonl", self.plan, self.cfg.seed)
        if test["cut"]:
            self.notes.append(test["cut"])
        specs = self.system_specs()
        key = {
            "specs": specs,
            "models": {k: model_fingerprint(p) for k, p in self.models.items()},
            "index": self.index_version(),
            "test": file_hash(test["path"]),
            "train": file_hash(self.train_qa),
            "user": file_hash(self.cfg.qa) if self.cfg.qa else None,
            "metric": self.cfg.metric,
        }
        return self.steps.run(
            "evaluate",
            "evaluate every system on the held-out questions",
            key,
            lambda: evaluate_systems(specs, test["path"], self.cfg.qa, self.train_qa, self.out, self.cfg.seed, self.progress, self.cfg.metric),
            [self.out / "eval" / "results.json"],
        )  # fmt: skip

    def measure_forgetting(self) -> None:
        """Each fine-tuned generator against the base on general-knowledge questions (eval.GENERAL_QA)."""
        from lifecycle.evaluation import measure_forgetting, sample_general

        kinds = budget.tuned_models(self.cfg.system_names())  # ft before raft, whichever trained first
        tuned = {k: self.models[k] for k in kinds if k in self.models}
        forget = self.out / "eval" / "forgetting.json"
        if not tuned or not self.plan.general_questions:
            forget.unlink(missing_ok=True)  # a rerun without fine-tunes reports none
            self.steps.n += 1
            return
        qa = sample_general(
            self.out / "eval" / "general_qa.jsonl", self.plan.general_questions, self.cfg.seed
        )
        key = {
            "base": self.base_key,
            "models": {k: model_fingerprint(p) for k, p in tuned.items()},
            "general": file_hash(qa),
            "seed": self.cfg.seed,
            "max_tokens": self.cfg.max_tokens,
        }
        res = self.steps.run(
            "forgetting",
            "measure each fine-tune's forgetting on general questions",
            key,
            lambda: measure_forgetting(tuned, self.base_dir, qa, self.out, self.cfg.seed, self.cfg.max_tokens, self.progress),
            [forget],
        )  # fmt: skip
        self.echo(
            "    F1 points lost vs the base: "
            + ", ".join(f"{k} {v:.1f}" for k, v in res["f1_points"].items())
            + "; answer-contained points lost: "
            + ", ".join(f"{k} {v:.1f}" for k, v in res["contained_points"].items())
        )

    def system_specs(self) -> list[dict[str, Any]]:
        cfg, out = self.cfg, []
        for name in cfg.system_names():
            head, retrieval = name.split("+")[0], name == "rag" or name.endswith("+rag")
            fewshot = head == "fewshot"
            model = self.models[head if head in ("ft", "raft") else "base"]
            spec: dict[str, Any] = {
                "name": name,
                "model": str(model),
                "max_tokens": cfg.max_tokens,
                "base_model": str(self.base_dir),
            }
            if fewshot and cfg.fewshot:
                spec.update(fewshot=cfg.fewshot, fewshot_seed=cfg.seed)
            if retrieval:
                spec.update(
                    retrieval=True,
                    top_k=cfg.top_k,
                    retrieval_mode=cfg.retrieval_mode,
                    index=str(self.index),
                    retriever=str(self.retriever) if self.retriever else None,
                )
            out.append(spec)
        return out

    # --- 7. report and winner --------------------------------------------------------------------------
    def conclude(self, parts: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
        from eval import merge_results
        from lifecycle.evaluation import load_results
        from lifecycle.report import write_run_report

        results = merge_results(load_results(self.out), *parts)
        winner = choose_winner(results, self)
        self.steps.n += 1
        self.echo(f"[{self.steps.n}/{self.total}] report and winner ...")
        files = write_run_report(results, self, winner)
        summary = {
            "run": str(self.out),
            "winner": winner.system,
            "won_on": winner.won_on,
            "serve_command": winner.serve_command,
            "report": {k: str(v) for k, v in files.items()},
            "plan": self.plan.to_dict(),
            "notes": self.notes,
            "step_seconds": self.steps.seconds(),
            "steps_run": self.steps.ran,
            "wall_seconds": round(time.perf_counter() - self.t0, 1),
            "synth": self.qa,
            "training": self.training,
        }
        tmp = self.out / ".summary.json.tmp"
        tmp.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
        tmp.replace(self.out / "summary.json")
        self.echo(f"[{self.steps.n}/{self.total}] report and winner: {files['md']}")
        self.echo(f"verdict: {winner.won_on.get('text', winner.system)}")
        self.echo(f"serve it: {serve_command(self.out)}")
        return summary
