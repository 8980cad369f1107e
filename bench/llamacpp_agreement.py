"""Answer agreement of the llama.cpp backend with the transformers fp32 path, per GGUF type (issue 23).

    .venv/bin/python bench/llamacpp_agreement.py --model DIR [--world DIR] [--n 80] [--types q8_0,f16,q4_k_m]

The same greedy RAG answers (16 tokens, the serving prompt with the question's gold passage, no retrieval so
only the engine differs) from transformers fp32 (serve's transformers backend with --prefill-precision
float32 --weight-precision float32: the reference) and from serve's llama.cpp backend on GGUF files written
by `ragtune export --gguf TYPE` from the same folder (`q4_1` adds the default model's own shipped GGUF when
--model is the default folder). Questions: --n held-out SQuAD v1.1 dev questions (seeded; the gold paragraph
is the passage) and --n questions of the demo world's test split (--world: a demo's world/ folder; the gold
person page is the passage). Per type and question set: identical answers (share of questions), EM and F1
against gold (SQuAD normalisation) and the paired F1 difference llama.cpp − fp32 with a bootstrap 95% CI.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
SQUAD = REPO.parent / "shared" / "data" / "squad_v1.1" / "dev-v1.1.json"


def squad_items(n: int, seed: int) -> list[dict]:
    data = json.loads(SQUAD.read_text(encoding="utf-8"))["data"]
    items = [
        {"q": qa["question"], "answers": [a["text"] for a in qa["answers"]], "passage": p["context"]}
        for art in data
        for p in art["paragraphs"]
        for qa in p["qas"]
    ]
    return random.Random(seed).sample(items, n)


def world_items(world: Path, n: int, seed: int) -> list[dict]:
    docs = {}
    for line in (world / "documents" / "people.jsonl").read_text(encoding="utf-8").splitlines():
        d = json.loads(line)
        docs[d["id"]] = {"title": d["title"], "text": d["text"]}
    rows = [
        json.loads(line) for line in (world / "qa" / "test.jsonl").read_text(encoding="utf-8").splitlines()
    ]
    rows = random.Random(seed).sample(rows, min(n, len(rows)))
    return [{"q": r["question"], "answers": [r["answer"]], "passage": docs[r["doc_ids"][0]]} for r in rows]


def answers(gen, items: list[dict]) -> tuple[list[str], float]:
    from ragtune.prompt import build_messages

    msgs = [build_messages(it["q"], [it["passage"]]) for it in items]
    t = time.perf_counter()
    out = [c.text for c in gen.generate(msgs, max_tokens=16)]
    return out, time.perf_counter() - t


def scores(preds: list[str], items: list[dict]) -> tuple[list[float], list[float]]:
    from eval.answers import score_answer

    rows = [score_answer(p, it["answers"]) for p, it in zip(preds, items)]
    return [r["exact_match"] for r in rows], [r["f1"] for r in rows]


def engines(model: Path, types: list[str], work: Path):
    """(name, a function building its Generator) for the reference and each GGUF type."""
    from ragtune.gguf_files import write_gguf
    from ragtune.models import default_generator_dir, gguf_path
    from serve import load_generator

    yield (
        "transformers-fp32",
        lambda: load_generator(
            model, prefill_precision="float32", weight_precision="float32", prefix_cache_mb=0
        ),
    )
    if model.resolve() == default_generator_dir().resolve():
        yield "llama.cpp-q4_1 (shipped)", lambda: _llama(gguf_path(), model, work)
    for t in types:
        yield f"llama.cpp-{t}", lambda t=t: _llama(write_gguf(model, work / f"{t}.gguf", t), model, work)


def _llama(gguf: Path, model: Path, work: Path):
    """The llama.cpp backend on `gguf`, prompts rendered by `model`'s tokenizer (copied beside the file)."""
    import shutil

    from serve.backends import Generator
    from serve.llamacpp_backend import LlamaCppBackend

    folder = work / f"serve-{gguf.stem}"
    folder.mkdir(exist_ok=True)
    for f in model.iterdir():
        if f.is_file() and f.suffix not in (".safetensors", ".gguf"):
            shutil.copy(f, folder / f.name)
    link = folder / "model.gguf"
    if not link.exists():
        link.symlink_to(gguf.resolve())
    return Generator(LlamaCppBackend(link, max_batch_size=8))


def main() -> None:
    from eval.stats import paired_bootstrap

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", required=True, help="a model folder (the default's, or a merged fine-tune)")
    ap.add_argument("--world", help="a demo's world/ folder (its test questions and person pages)")
    ap.add_argument("--n", type=int, default=80)
    ap.add_argument("--types", default="q8_0,f16,q4_k_m")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default="bench-out/llamacpp-agreement")
    ap.add_argument("--json", help="write the figures here")
    args = ap.parse_args()
    work = Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    sets = {"squad": squad_items(args.n, args.seed)}
    if args.world:
        sets["demo"] = world_items(Path(args.world), args.n, args.seed)
    model = Path(args.model)
    preds: dict[str, dict[str, list[str]]] = {}
    secs: dict[str, float] = {}
    for name, build in engines(model, [t for t in args.types.split(",") if t], work):
        gen = build()
        preds[name], secs[name] = {}, 0.0
        for s, items in sets.items():
            preds[name][s], dt = answers(gen, items)
            secs[name] += dt
        asyncio.run(gen.backend.aclose())
        print(f"{name}: {secs[name]:.1f} s", file=sys.stderr, flush=True)
    ref = "transformers-fp32"
    report: dict = {"model": str(model), "n": {s: len(v) for s, v in sets.items()}, "engines": {}}
    print(f"{'engine':26} | set   | identical | EM    | F1    | F1 − fp32 [95% CI]   | answer s")
    for name in preds:
        for s, items in sets.items():
            em, f1 = scores(preds[name][s], items)
            _, f1_ref = scores(preds[ref][s], items)
            same = sum(a == b for a, b in zip(preds[name][s], preds[ref][s])) / len(items)
            d = paired_bootstrap(f1, f1_ref, seed=args.seed, scale=100.0)
            row = {
                "identical": same,
                "em": 100 * sum(em) / len(em),
                "f1": 100 * sum(f1) / len(f1),
                "f1_diff": d,
            }
            report["engines"].setdefault(name, {})[s] = {**row, "seconds": secs[name]}
            print(
                f"{name:26} | {s:5} | {100 * same:8.1f}% | {row['em']:5.1f} | {row['f1']:5.1f} | "
                f"{d['diff']:+5.1f} [{d['low']:+5.1f}, {d['high']:+5.1f}] | {secs[name]:6.1f}"
            )
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
