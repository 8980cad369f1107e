"""SQuAD v1.1 as a RAG-versus-fine-tune benchmark on real Wikipedia text, through ragtune's own commands.

    .venv/bin/python bench/squad.py [--work DIR] [--cb-questions 640] [--raft-questions 64] [--n-test 80] [--threads 1]
                                    [--retrieval dense|bm25|hybrid]

From the raw dev-v1.1.json (../shared/data/squad_v1.1) to the table, with the default generator
(SmolLM2-135M-Instruct) and the default retriever (all-MiniLM-L6-v2):
  1. `ragtune data import squad`   one document per paragraph; questions split by article: half the
                                   articles train, half test (no test article is seen in training)
  2. `ragtune ingest`              every dev paragraph (2,067) into one index
  3. sample                        seeded: --cb-questions / --raft-questions training questions, and
                                   --n-test held-out test questions
  4. `ragtune tune generator`      closed-book LoRA (question -> answer)
  5. `ragtune tune generator --mode raft`  RAFT LoRA: the question with k passages (the gold paragraph in
                                   80% of the examples, the rest retrieved distractors)
  6. `ragtune export`              both adapters merged into plain model folders
  7. `ragtune eval`                base, rag, ft, ft+rag, raft+rag on the same test questions: EM/F1/contains
                                   (official SQuAD v1.1 normalisation; contains guarded against lists of
                                   candidates) with bootstrap 95% CIs, recall@k, paired differences and the
                                   report's verdict on --metric (default contains), printed beside the
                                   verdict EM would give. The eval step always reruns: its predictions are
                                   cached, so only the scoring is repeated. With --retrieval, the RAG
                                   systems retrieve that way (eval-MODE/, squad-MODE.json; unset: eval's
                                   default, hybrid on an index with a lexical part); once both
                                   eval-dense/ and hybrid results exist (eval-hybrid/, or the default eval/
                                   when it recorded hybrid RRF for every RAG system), the paired differences
                                   hybrid − dense per RAG system (same models, same questions) are printed too.
LoRA settings are the demo's (r 16, alpha 32, all linear layers, lr 1e-3, batch 8, one epoch, no
validation split), as are k = 3 passages and 16 answer tokens; RAFT runs its steps of 8 as micro-batches
of 4 (memory). --threads 1 sets OMP_NUM_THREADS for every step: on cores shared with other jobs one thread
is faster than two that wait for each other. Each step's wall time is printed; steps whose output exists
in --work are reused (delete it to rerun), and so are the eval's cached predictions per system. The official script's scores of the
published dev predictions (extractive BERT-class readers given the gold paragraph) are printed as a scale.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from bench.scifact import ragtune, step  # the benchmarks' one way to run a step

SQUAD = REPO.parent / "shared" / "data" / "squad_v1.1"
SYSTEMS = ("base", "rag", "ft", "ft+rag", "raft+rag")
EVAL_ORDER = ("rag", "raft+rag", "ft+rag", "base", "ft")  # the RAG systems first: an interrupted eval resumes
METRICS = ("exact_match", "f1", "contains")


def sample(src: Path, dst: Path, n: int, seed: int) -> None:
    rows = [line for line in src.read_text(encoding="utf-8").splitlines() if line.strip()]
    picked = random.Random(seed).sample(rows, min(n, len(rows)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    tmp = dst.with_suffix(".tmp")
    tmp.write_text("\n".join(picked) + "\n", encoding="utf-8")
    tmp.replace(dst)


def tune(args: argparse.Namespace, data: Path, out: Path, record: Path, *extra: str) -> None:
    shutil.rmtree(out, ignore_errors=True)  # a half-written run from a killed attempt
    res = ragtune(
        "tune",
        "generator",
        "--base",
        args.generator,
        "--data",
        str(data),
        "--out",
        str(out),
        "--method",
        "lora",
        "--lora-r",
        str(args.lora_r),
        "--lora-alpha",
        str(2 * args.lora_r),
        "--lr",
        str(args.lr),
        "--epochs",
        str(args.epochs),
        "--batch-size",
        str(args.batch_size),
        "--val-fraction",
        "0",
        "--seed",
        str(args.seed),
        "--json",
        *extra,
    )
    lines = res.splitlines()
    r = json.loads("\n".join(lines[lines.index("{") :]))  # the JSON follows any log lines
    print(
        f"    {r['n_train']} examples, {r['steps']} steps in {r['train_seconds']:.0f} s "
        f"({r['tokens_per_second']:.0f} tokens/s)",
        flush=True,
    )
    record.write_text(json.dumps(r, indent=2))


def export(adapter: Path, out: Path) -> None:
    shutil.rmtree(out, ignore_errors=True)
    ragtune("export", "--adapter", str(adapter), "--out", str(out))


def run(args: argparse.Namespace) -> None:
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    times: dict[str, float] = {}
    t_start = time.perf_counter()
    index, cb_qa, raft_qa, test_qa = prepare(args, work, times)
    ft_model, raft_model, ft_rec, raft_rec = train(args, work, index, cb_qa, raft_qa, times)
    ev = work / (f"eval-{args.retrieval}" if args.retrieval else "eval")
    report = evaluate(args, ev, index, test_qa, ft_model, raft_model, times)
    times["total (this invocation)"] = time.perf_counter() - t_start
    result = summarise(
        json.loads(report.read_text()), json.loads(ft_rec.read_text()), json.loads(raft_rec.read_text()), args
    )
    result["published_on_sample"] = published_on_sample(test_qa, work / "published")
    result["hybrid_minus_dense"] = retrieval_differences(work, args.top_k)
    # Wall times accumulate over invocations that reused earlier steps: keep the ones measured before.
    out = work / (f"squad-{args.retrieval}.json" if args.retrieval else "squad.json")
    old = json.loads(out.read_text()).get("seconds", {}) if out.exists() else {}
    result["seconds"] = {**old, **times}
    out.write_text(json.dumps(result, indent=2))
    print_table(result)


def prepare(args: argparse.Namespace, work: Path, times: dict) -> tuple[Path, Path, Path, Path]:
    """Import (split by article), ingest every paragraph, and draw the seeded question samples."""
    data, index, qa = work / "data", work / "index", work / "qa"
    src = str(SQUAD / "dev-v1.1.json")
    split = ["--test-fraction", "0.5", "--validation-fraction", "0", "--seed", str(args.seed)]
    step("import", data, lambda: ragtune("data", "import", "squad", src, "--out", str(data), *split), times)
    step(
        "ingest",
        index,
        lambda: ragtune("ingest", str(data / "documents.jsonl"), "--index", str(index)),
        times,
    )
    names = (f"train_cb_{args.cb_questions}", f"train_raft_{args.raft_questions}", f"test_{args.n_test}")
    cb_qa, raft_qa, test_qa = (qa / f"{n}.jsonl" for n in names)
    for path, source, n, seed in (
        (cb_qa, "train", args.cb_questions, args.seed),
        (raft_qa, "train", args.raft_questions, args.seed + 1),
        (test_qa, "test", args.n_test, args.seed),
    ):
        if not path.exists():
            sample(data / f"{source}.jsonl", path, n, seed)
    return index, cb_qa, raft_qa, test_qa


def train(args: argparse.Namespace, work: Path, index: Path, cb_qa: Path, raft_qa: Path, times: dict):
    """Closed-book and RAFT LoRA, each exported to a plain model folder: (ft, raft, their training records)."""
    ft_ad = work / "adapters" / f"ft_{args.cb_questions}"
    raft_ad = work / "adapters" / f"raft_{args.raft_questions}"
    ft_rec, raft_rec = work / f"tune-{ft_ad.name}.json", work / f"tune-{raft_ad.name}.json"
    ft_model, raft_model = work / "models" / ft_ad.name, work / "models" / raft_ad.name
    step("tune closed-book", ft_rec, lambda: tune(args, cb_qa, ft_ad, ft_rec, "--mode", "closed-book"), times)
    # RAFT examples are ~10x longer than closed-book ones: micro-batches with gradient accumulation keep the
    # step at --batch-size examples (8 x ~700 tokens peaked at 10.6 GB RSS and was OOM-killed on a shared 23 GB box).
    micro = min(args.raft_micro_batch, args.batch_size)
    raft = ["--mode", "raft", "--index", str(index), "--k", str(args.top_k), "--p-gold", str(args.p_gold)]
    raft += ["--batch-size", str(micro), "--grad-accum", str(args.batch_size // micro)]
    step("tune raft", raft_rec, lambda: tune(args, raft_qa, raft_ad, raft_rec, *raft), times)
    step("export closed-book", ft_model, lambda: export(ft_ad, ft_model), times)
    step("export raft", raft_model, lambda: export(raft_ad, raft_model), times)
    return ft_model, raft_model, ft_rec, raft_rec


def evaluate(
    args, ev: Path, index: Path, test_qa: Path, ft_model: Path, raft_model: Path, times: dict
) -> Path:
    """The five systems on the same test questions through `ragtune eval`; returns its results.json."""
    models = ["--base", args.generator, "--ft", str(ft_model), "--model", f"raft={raft_model}"]
    gen = [
        "--top-k",
        str(args.top_k),
        "--max-tokens",
        str(args.max_tokens),
        "--batch-size",
        str(args.eval_batch_size),
    ]
    cmd = [
        "eval",
        "--qa",
        str(test_qa),
        "--systems",
        ",".join(EVAL_ORDER),
        *models,
        "--index",
        str(index),
        *gen,
        *(["--retrieval", args.retrieval] if args.retrieval else []),
    ]
    report = ev / "results.json"
    cmd += ["--metric", args.metric, "--seed", str(args.seed), "--out", str(ev)]
    report.unlink(missing_ok=True)  # rescored every time (new metrics); the predictions are cached
    step("eval", report, lambda: ragtune(*cmd), times)
    return report


def published_on_sample(test_qa: Path, out: Path) -> dict:
    """The published dev predictions scored by `ragtune eval score` on our test sample (same questions)."""
    out.mkdir(parents=True, exist_ok=True)
    ids = [
        json.loads(line)["id"] for line in test_qa.read_text(encoding="utf-8").splitlines() if line.strip()
    ]
    scores = {}
    for f in sorted((SQUAD / "predictions").glob("*.json")):
        preds = json.loads(f.read_text(encoding="utf-8"))
        path = out / f"{f.stem}.jsonl"
        path.write_text("".join(json.dumps({"id": i, "prediction": preds.get(i, "")}) + "\n" for i in ids))
        res = json.loads(ragtune("eval", "score", "--qa", str(test_qa), "--predictions", str(path), "--json"))
        scores[f.stem] = {m: {key: res["ci"][m][key] for key in ("mean", "low", "high")} for m in METRICS}
    return scores


def hybrid_results(work: Path) -> Path | None:
    """eval-hybrid/results.json, else the default eval/ when every RAG system there ran hybrid with RRF."""
    named, default = work / "eval-hybrid" / "results.json", work / "eval" / "results.json"
    if named.exists() or not default.exists():
        return named if named.exists() else None
    systems = json.loads(default.read_text())["splits"]["test"]["systems"].values()
    rag = [s for s in systems if s["spec"].get("retrieval")]
    ran = {(s["describe"].get("retrieval_kind"), s["spec"].get("fusion", "rrf")) for s in rag}
    return default if ran == {("hybrid", "rrf")} else None


def retrieval_differences(work: Path, k: int) -> dict:
    """Hybrid − dense per RAG system, paired over the same questions (points; recall@k on 0–1): {} until both
    eval-dense/ and hybrid results (hybrid_results) exist."""
    from eval.stats import paired_bootstrap

    paths = [hybrid_results(work), work / "eval-dense" / "results.json"]
    if paths[0] is None or not paths[1].exists():
        return {}
    print(f"hybrid − dense: {paths[0]} against {paths[1]}", flush=True)
    hyb, den = _per_question(paths)
    out: dict = {}
    for name in [n for n in SYSTEMS if "rag" in n and n in hyb]:
        ids = sorted(set(hyb[name]) & set(den[name]))
        for m, scale in [*((x, 100.0) for x in METRICS), (f"recall@{k}", 1.0)]:

            def val(row: dict, m: str = m) -> float:
                return float(row["retrieval"][m] if m.startswith("recall@") else row[m])

            a = [val(hyb[name][i]) for i in ids]
            b = [val(den[name][i]) for i in ids]
            out.setdefault(name, {})[m] = paired_bootstrap(a, b, seed=0, scale=scale)
    return out


def _per_question(paths: list[Path]) -> list[dict]:
    """{system: {question id: row}} of each results.json's test split."""
    out = []
    for p in paths:
        pq = json.loads(p.read_text())["splits"]["test"]["per_question"]
        out.append({name: {r["id"]: r for r in rows} for name, rows in pq.items()})
    return out


def summarise(res: dict, ft: dict, raft: dict, args: argparse.Namespace) -> dict:
    test = res["splits"]["test"]
    k = args.top_k
    rows = {}
    for name in [n for n in SYSTEMS if n in test["systems"]]:  # all five, or what a partial run has
        m = test["systems"][name]["metrics"]
        rows[name] = {x: {key: m[x][key] for key in ("mean", "low", "high")} for x in METRICS}
        if f"recall@{k}" in m:
            rows[name][f"recall@{k}"] = {key: m[f"recall@{k}"][key] for key in ("mean", "low", "high")}
    diffs = {}
    for c in test["comparisons"]:
        for hi, lo in (
            ("raft+rag", "rag"),
            ("raft+rag", "ft+rag"),
            ("ft+rag", "rag"),
            ("rag", "base"),
            ("ft", "base"),
        ):
            if c["metric"] in METRICS and {c["a"], c["b"]} == {hi, lo}:
                sign = 1 if c["a"] == hi else -1  # stored as a - b
                lo_, hi_ = sorted((sign * c["low"], sign * c["high"]))
                diffs.setdefault(f"{hi} - {lo}", {})[c["metric"]] = {
                    "diff": sign * c["diff"],
                    "low": lo_,
                    "high": hi_,
                }
    published = json.loads((SQUAD / "official_script_scores.json").read_text())
    from eval.verdict import compute_verdict

    verdict = [v.get("text") for v in res.get("verdict", {}).get("splits", {}).values() if v.get("text")]
    em_verdict = [v["text"] for v in compute_verdict(res, "exact_match")["splits"].values()]
    train = {
        n: {
            **{key: r[key] for key in ("n_train", "steps", "train_seconds", "tokens_per_second")},
            "train_loss_first": round(r["train_losses"][0]["loss"], 3) if r.get("train_losses") else None,
            "train_loss_last": round(r["train_losses"][-1]["loss"], 3) if r.get("train_losses") else None,
        }
        for n, r in (("closed-book", ft), ("raft", raft))
    }
    return {
        "n_test": test["qa"]["n"],
        "top_k": k,
        "systems": rows,
        "differences": diffs,
        "training": train,
        "published_full_dev": published,
        "verdict_metric": res.get("verdict", {}).get("metric"),
        "verdict": verdict,
        "verdict_on_em": em_verdict,
        "guard_refused": {n: test["systems"][n].get("contains_guarded") for n in rows},
        "settings": vars(args),
    }


def _ci(v: dict, fmt: str = "{:.1f}") -> str:
    return f"{fmt.format(v['mean'])} [{fmt.format(v['low'])}, {fmt.format(v['high'])}]"


def print_table(result: dict) -> None:
    k = result["top_k"]
    print(
        f"\nSQuAD v1.1 dev, held-out articles, {result['n_test']} test questions, k = {k} "
        f"(bootstrap 95% CIs; EM/F1/contains in %)"
    )
    print(f"{'system':<9} {'EM':>18} {'F1':>18} {'contains':>18} {f'recall@{k}':>20}")
    for name, r in result["systems"].items():
        rec = _ci(r[f"recall@{k}"], "{:.3f}") if f"recall@{k}" in r else "-"
        print(f"{name:<9} {_ci(r['exact_match']):>18} {_ci(r['f1']):>18} {_ci(r['contains']):>18} {rec:>20}")
    print("\npaired differences (points, 95% CI):")
    for pair, d in result["differences"].items():
        print(
            f"  {pair:<18} "
            + "  ".join(f"{m} {v['diff']:+.1f} [{v['low']:+.1f}, {v['high']:+.1f}]" for m, v in d.items())
        )
    print("\ntraining:")
    for n, t in result["training"].items():
        print(
            f"  {n:<12} {t['n_train']} questions, {t['steps']} steps, {t['train_seconds']:.0f} s, "
            f"{t['tokens_per_second']:.0f} tokens/s, loss {t['train_loss_first']} -> {t['train_loss_last']}"
        )
    print(
        "\npublished dev predictions (extractive readers given the gold paragraph — a scale, not a target):"
    )
    print(f"{'':<40} {'full dev (official script)':>26} {'our sample: EM':>20} {'F1':>18}")
    for name, s in result["published_full_dev"].items():
        ours = result.get("published_on_sample", {}).get(name.removesuffix(".json"))
        tail = f" {_ci(ours['exact_match']):>20} {_ci(ours['f1']):>18}" if ours else ""
        print(f"  {name.removesuffix('.json'):<38} EM {s['exact_match']:5.1f}  F1 {s['f1']:5.1f}      {tail}")
    print(
        f"\ncontains refused by its guard (gold in the reply among too many items or words): {result['guard_refused']}"
    )
    for line in result["verdict"]:
        print(f"\nverdict ({result['verdict_metric']}): {line}")
    for line in result["verdict_on_em"]:
        print(f"\nverdict (exact_match): {line}")
    if result.get("hybrid_minus_dense"):
        print("\nhybrid − dense retrieval, same models and questions (points; recall on 0–1; paired 95% CI):")
        for name, d in result["hybrid_minus_dense"].items():
            cells = "  ".join(
                f"{m} {v['diff']:+.3g} [{v['low']:+.3g}, {v['high']:+.3g}]" for m, v in d.items()
            )
            print(f"  {name:<9} {cells}")
    print("\nwall times:")
    for name, s in result["seconds"].items():
        print(f"  {name}: {s:.0f} s")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", default="bench-out/squad")
    p.add_argument("--generator", default="default", help="Base generator: `default` or a model folder.")
    p.add_argument("--cb-questions", type=int, default=640, help="Training questions for closed-book LoRA.")
    p.add_argument("--raft-questions", type=int, default=64, help="Training questions for RAFT LoRA.")
    p.add_argument("--n-test", type=int, default=80, help="Seeded sample of held-out test questions.")
    p.add_argument("--top-k", type=int, default=3, help="Passages per RAFT example and per RAG question.")
    p.add_argument(
        "--p-gold", type=float, default=0.8, help="Share of RAFT examples that keep the gold paragraph."
    )
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument(
        "--raft-micro-batch",
        type=int,
        default=4,
        help="RAFT examples per forward pass; gradients accumulate to --batch-size per step.",
    )
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--eval-batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--retrieval",
        choices=["dense", "bm25", "hybrid"],
        help="How the RAG systems retrieve at eval (default: eval's, hybrid on an index with BM25).",
    )
    p.add_argument(
        "--metric", default="contains", choices=["em", "f1", "contains"], help="The verdict's metric."
    )
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads of every step (OMP_NUM_THREADS); 1 is fastest when others share the cores.",
    )
    args = p.parse_args()
    if args.threads:
        os.environ.update(
            OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads)
        )  # every step inherits
    run(args)


if __name__ == "__main__":
    main()
