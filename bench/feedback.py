"""Learning from feedback on the demo world: does tuning on what users marked wrong help, and which objective?

    flock /tmp/heavy.lock .venv/bin/python bench/feedback.py --out bench-out/feedback

1. The demo's target world (40 people, 160 facts; `--people`), indexed with the base retriever.
2. Simulated users: the untuned RAG system (default model, `ragtune serve --feedback-db`) answers one
   training wording of every fact over HTTP; a user marks each wrong answer (SQuAD exact match against the
   gold) down with the gold answer as the correction, and each right one up (POST /v1/feedback).
3. `ragtune feedback export` → sft.jsonl (corrections) and preferences.jsonl (gold over the wrong answer).
4. Three LoRA fine-tunes of the default model with the same rank, epochs and batch:
   sft   RAFT-style SFT on the corrections (each re-retrieved with distractors, like RAFT);
   dpo   DPO on the preference pairs (the served prompt, chosen = correction, rejected = the answer);
   raft  RAFT on as many gold training examples as there are corrections, drawn at random.
5. Each served with the index and scored over HTTP on the held-out test questions against untuned RAG
   (EM/F1 with paired bootstrap CIs), and forgetting on the general-knowledge questions.
Writes OUT/result.json and prints the tables docs/benchmarks.md quotes.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

# run as a script, bench/ would come first on sys.path and its ingest.py would shadow the ingest stage
REPO = Path(__file__).resolve().parents[1]
sys.path[:] = [str(REPO), *(p for p in sys.path if Path(p or ".").resolve() != REPO / "bench")]

API_KEY = "bench-feedback-key"
SYSTEMS = ("rag", "sft+rag", "dpo+rag", "raft+rag")
METRICS = ("exact_match", "f1")


def parse() -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=Path, default=Path("bench-out/feedback"))
    p.add_argument("--people", type=int, default=40, help="People in the world (4 facts each).")
    p.add_argument("--n-test", type=int, default=80, help="Held-out test questions.")
    p.add_argument("--top-k", type=int, default=3)
    p.add_argument("--max-tokens", type=int, default=16)
    p.add_argument("--lora-r", type=int, default=16)
    p.add_argument(
        "--lr", type=float, default=1e-3, help="SFT and RAFT learning rate (the demo's RAFT rate)."
    )
    p.add_argument("--dpo-lr", type=float, default=2e-4, help="DPO learning rate.")
    p.add_argument("--beta", type=float, default=0.1, help="DPO beta.")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--batch-size", type=int, default=8)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--forget-n", type=int, default=None, help="General questions for forgetting (default: all)."
    )
    return p.parse_args()


def world(args: argparse.Namespace, out: Path) -> tuple[dict[str, Path], Path, list[dict]]:
    """(world paths, index, the users' questions: the first training wording of every fact)."""
    from demo.world import make_world, write_world
    from ingest import ingest
    from ragtune.records import iter_jsonl

    paths = write_world(make_world(args.people, seed=args.seed), out / "world", n_test=args.n_test)
    index = out / "index"
    if not (index / "CURRENT").is_file():
        ingest([paths["documents"]], index, show_progress=False)
    asked = [o for _, o in iter_jsonl(paths["train"]) if o["id"].endswith(":q0")]
    return paths, index, asked


def serve(model, index: Path, *extra: str):
    from serve import start_server

    args = ["--backend", "transformers", "--max-tokens-cap", "64", "--poll-interval", "0", *extra]
    return start_server(model, index, api_key=API_KEY, extra_args=args)


def simulate_users(args, base: Path, index: Path, asked: list[dict], db: Path) -> dict:
    """The untuned RAG system answers every user question; each answer is rated by EM against the gold."""
    import httpx
    from openai import OpenAI

    from ragtune.squad_metric import exact_match

    db.unlink(missing_ok=True)
    counts = {"asked": len(asked), "up": 0, "down": 0, "acked": 0}
    t0 = time.perf_counter()
    with serve(base, index, "--feedback-db", str(db), "--top-k", str(args.top_k)) as handle:
        client = OpenAI(base_url=handle.base_url, api_key=API_KEY, max_retries=0, timeout=300)
        model = client.models.list().data[0].id

        def one(q: dict) -> str:
            r = client.chat.completions.create(
                model=model,
                messages=[{"role": "user", "content": q["question"]}],
                max_tokens=args.max_tokens,
                temperature=0,
            )
            right = exact_match(r.choices[0].message.content, q["answer"]) == 1.0
            body = {"response_id": r.id, "rating": "up" if right else "down"}
            if not right:
                body["correction"] = q["answer"] if isinstance(q["answer"], str) else q["answer"][0]
            ack = httpx.post(
                f"{handle.url}/v1/feedback",
                json=body,
                headers={"Authorization": f"Bearer {API_KEY}"},
                timeout=60,
            )
            ack.raise_for_status()
            return body["rating"]

        with ThreadPoolExecutor(8) as pool:
            for rating in pool.map(one, asked):
                counts[rating] += 1
                counts["acked"] += 1
    counts["seconds"] = round(time.perf_counter() - t0, 1)
    return counts


def tune(args, base: Path, out: Path, data: Path, name: str, **kw) -> tuple[Path, dict]:
    from tuner import export_model, train_generator

    adapter, merged = out / "adapters" / name, out / "models" / name
    if (merged / "ragtune.json").is_file():
        return merged, json.loads((out / f"train-{name}.json").read_text())
    common = {
        "seed": args.seed,
        "val_fraction": 0.0,
        "batch_size": args.batch_size,
        "epochs": args.epochs,
        "lora_r": args.lora_r,
        "lora_alpha": 2 * args.lora_r,
        "resume": True,  # a rerun after a crash goes on from the last checkpoint
    }
    res = train_generator(str(base), str(data), str(adapter), **{**common, **kw})
    export_model(res.out_dir, merged)
    line = {
        k: getattr(res, k)
        for k in ("n_train", "steps", "train_seconds", "tokens_per_second", "trainable_params")
    }
    line["loss_first"] = res.train_losses[0]["loss"] if res.train_losses else None
    line["loss_last"] = res.train_losses[-1]["loss"] if res.train_losses else None
    (out / f"train-{name}.json").write_text(json.dumps(line, indent=2))
    return merged, line


def train_all(args, base: Path, out: Path, index: Path, paths: dict, data: Path, asked: list[dict]) -> tuple:
    from ragtune.records import iter_jsonl, write_jsonl

    n = sum(1 for _ in iter_jsonl(data / "sft.jsonl"))
    # RAFT on as many gold examples of random facts, in another training wording than the users asked
    # (where the users' answers were all wrong, their questions would be the corrections' very rows)
    pool = [o for _, o in iter_jsonl(paths["train"]) if o["id"].endswith(":q1")]
    gold = random.Random(args.seed).sample(pool, min(n, len(pool)))
    write_jsonl(out / "raft_gold.jsonl", gold)
    raft = {"mode": "raft", "index": str(index), "k": args.top_k, "learning_rate": args.lr}
    models, lines = {}, {}
    t = time.perf_counter()
    models["sft+rag"], lines["sft"] = tune(args, base, out, data / "sft.jsonl", "sft", **raft)
    models["dpo+rag"], lines["dpo"] = tune(
        args,
        base,
        out,
        data / "preferences.jsonl",
        "dpo",
        objective="dpo",
        learning_rate=args.dpo_lr,
        beta=args.beta,
    )
    models["raft+rag"], lines["raft"] = tune(args, base, out, out / "raft_gold.jsonl", "raft", **raft)
    lines["seconds"] = round(time.perf_counter() - t, 1)
    return models, lines


def evaluate(args, base: Path, out: Path, index: Path, paths: dict, models: dict) -> dict:
    from eval import run_comparison

    with contextlib.ExitStack() as stack:
        urls = {"rag": stack.enter_context(serve(base, index)).url}
        for name, folder in models.items():
            urls[name] = stack.enter_context(serve(folder, index)).url
        specs = [
            {
                "name": name,
                "url": urls[name],
                "api_key": API_KEY,
                "retrieval": True,
                "top_k": args.top_k,
                "max_tokens": args.max_tokens,
                "model": str(models.get(name, base)),
            }
            for name in SYSTEMS
        ]
        return run_comparison(
            paths["test"],
            specs,
            out_dir=out / "eval",
            seed=args.seed,
            progress=False,
            resume=False,
            metric="em",
        )


def summarise(res: dict, forget: list[dict]) -> dict:
    test = res["splits"]["test"]
    rows = {
        name: {
            m: {k: test["systems"][name]["metrics"][m][k] for k in ("mean", "low", "high")} for m in METRICS
        }
        for name in SYSTEMS
    }
    diffs: dict = {}
    for c in test["comparisons"]:
        for hi, lo in (
            ("sft+rag", "rag"),
            ("dpo+rag", "rag"),
            ("raft+rag", "rag"),
            ("sft+rag", "raft+rag"),
            ("dpo+rag", "raft+rag"),
            ("sft+rag", "dpo+rag"),
        ):
            if c["metric"] in METRICS and {c["a"], c["b"]} == {hi, lo}:
                sign = 1 if c["a"] == hi else -1
                low, high = sorted((sign * c["low"], sign * c["high"]))
                diffs.setdefault(f"{hi} - {lo}", {})[c["metric"]] = {
                    "diff": sign * c["diff"],
                    "low": low,
                    "high": high,
                }
    return {"n_test": test["qa"]["n"], "systems": rows, "differences": diffs, "forgetting": forget}


def main() -> None:
    args = parse()
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    from eval import GENERAL_QA, forgetting_of
    from ragtune.models import resolve_generator
    from tuner.feedback_data import export_feedback

    times: dict[str, float] = {}
    t = time.perf_counter()
    base = resolve_generator("default")
    paths, index, asked = world(args, out)
    times["world+index"] = round(time.perf_counter() - t, 1)
    users = simulate_users(args, base, index, asked, out / "feedback.db")
    print(f"users: {json.dumps(users)}", flush=True)
    summary = export_feedback(out / "feedback.db", out / "data", seed=args.seed)
    print(summary.text(), flush=True)
    models, training = train_all(args, base, out, index, paths, out / "data", asked)
    print(f"training: {json.dumps(training)}", flush=True)
    t = time.perf_counter()
    res = evaluate(args, base, out, index, paths, models)
    times["evaluate"] = round(time.perf_counter() - t, 1)
    t = time.perf_counter()
    tuned = {name.split("+")[0]: folder for name, folder in models.items()}
    from ragtune.records import load_qa

    general = load_qa(GENERAL_QA)[: args.forget_n]
    forget = forgetting_of(tuned, base, general, seed=args.seed, progress=False)
    times["forgetting"] = round(time.perf_counter() - t, 1)
    result = {
        "args": {k: str(v) for k, v in vars(args).items()},
        "users": users,
        "export": summary.__dict__,
        "training": training,
        **summarise(res, forget),
        "seconds": times,
    }
    (out / "result.json").write_text(json.dumps(result, indent=2, default=str))
    print_tables(result)


def _ci(v: dict, scale: float = 1.0) -> str:
    return f"{v['mean'] * scale:.1f} [{v['low'] * scale:.1f}, {v['high'] * scale:.1f}]"


def print_tables(r: dict) -> None:
    print(f"\n{r['n_test']} held-out test questions; EM and F1 in points, 95% bootstrap CI")
    for name, m in r["systems"].items():
        print(f"  {name:9s} EM {_ci(m['exact_match'])}  F1 {_ci(m['f1'])}")
    print("paired differences (points, 95% CI):")
    for pair, d in r["differences"].items():
        print(
            f"  {pair:20s} "
            + "  ".join(f"{m} {v['diff']:+.1f} [{v['low']:+.1f}, {v['high']:+.1f}]" for m, v in d.items())
        )
    print("forgetting on the general-knowledge questions:")
    for f in r["forgetting"]:
        print(f"  {f['name']}: {json.dumps(f.get('forgetting'), default=str)[:300]}")


if __name__ == "__main__":
    main()
