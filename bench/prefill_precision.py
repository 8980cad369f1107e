"""bf16 prefill and bf16 weights against fp32 on real RAG prompts: same answers? same accuracy? faster?

    .venv/bin/python bench/prefill_precision.py [--questions 96] [--max-tokens 24] [--seed 0]

SQuAD v1.1 dev (../shared/data/squad_v1.1): --questions questions sampled with --seed, each asked through
ragtune's RAG prompt (ragtune/prompt.py) with its own paragraph and two paragraphs of other articles as
passages (gold shuffled among them), greedy, --max-tokens tokens, on the default generator with the serve
backend (serve/hf_backend.py) three times in one process: all fp32; prefill under bf16 autocast with fp32
weights (`ragtune serve --prefill-precision bf16-autocast --weight-precision float32`; decode fp32); and
bf16 linear weights (`--weight-precision bf16`: prefill and decode products in bf16). Printed for each
against fp32: the share of identical answers, EM and F1 (official SQuAD normalisation) with the paired
difference and its 95% bootstrap CI, and the prefill and generation time ratios over the same prompts
(prefill: batches of 8, best of 2; generation: the answers' whole run).

Measured 2026-11-30 on a quiet 2-core AMD EPYC with avx512_bf16 (no AMX), defaults: 91/96 identical answers;
F1 17.1 both, bf16 - fp32 +0.0 [-0.3, +0.4]; EM 0.0 both (the untuned model answers in sentences); prefill
time 0.467x. On that evidence `--prefill-precision auto` takes bf16 autocast on such CPUs. (The bf16
weights row: see docs/benchmarks.md.)
"""

from __future__ import annotations

import argparse
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


def questions(n: int, seed: int) -> list[dict]:
    """n questions, each with its paragraph and two paragraphs of other articles, shuffled."""
    articles = json.loads(SQUAD.read_text())["data"]
    rng = random.Random(seed)
    items = [
        (a, p, qa)
        for a, art in enumerate(articles)
        for p in art["paragraphs"]
        for qa in p["qas"][:1]  # one question per paragraph
    ]
    out = []
    for a, para, qa in rng.sample(items, n):
        others = [p for b, art in enumerate(articles) if b != a for p in art["paragraphs"]]
        passages = [para["context"]] + [p["context"] for p in rng.sample(others, 2)]
        rng.shuffle(passages)
        golds = [x["text"] for x in qa["answers"]]
        out.append({"question": qa["question"], "passages": passages, "golds": golds})
    return out


def answers(backend, rows: list[dict], max_tokens: int) -> list[str]:
    from ragtune.prompt import build_messages
    from serve.types import SamplingOptions

    prompts = [backend.prepare(build_messages(r["question"], r["passages"])).prompt_ids for r in rows]
    return [c.text for c in backend.generate_prepared(prompts, SamplingOptions(max_tokens=max_tokens))]


def prefill_seconds(backend, rows: list[dict]) -> float:
    """Prefill time alone over the prompts, batches of 8 (best of 2)."""
    from ragtune.prompt import build_messages
    from serve.decoding import Job
    from serve.types import SamplingOptions

    ids = [backend.prepare(build_messages(r["question"], r["passages"])).prompt_ids for r in rows]
    best = float("inf")
    for _ in range(2):
        t = time.perf_counter()
        for i in range(0, len(ids), 8):
            backend._prefill([Job(p, SamplingOptions(max_tokens=1), lambda d: None) for p in ids[i : i + 8]])
        best = min(best, time.perf_counter() - t)
    return best


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--questions", type=int, default=96)
    ap.add_argument("--max-tokens", type=int, default=24)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    from eval.stats import paired_bootstrap
    from ragtune.models import resolve_generator
    from ragtune.squad_metric import exact_match, token_f1
    from serve.hf_backend import TransformersBackend

    model = resolve_generator("default")
    rows = questions(args.questions, args.seed)
    variants = {  # name: (prefill precision, weight precision)
        "float32": ("float32", "float32"),
        "bf16-prefill": ("bf16-autocast", "float32"),
        "bf16-weights": ("bf16-autocast", "bf16"),
    }
    texts, secs, gen_secs = {}, {}, {}
    for name, (prefill, weights) in variants.items():
        be = TransformersBackend(  # prompts repeat (answers, then prefill timing): no prefix reuse
            model, max_batch_size=8, prefill_precision=prefill, weight_precision=weights, prefix_cache_mb=0
        )
        t = time.perf_counter()
        texts[name] = answers(be, rows, args.max_tokens)
        gen_secs[name] = time.perf_counter() - t
        secs[name] = prefill_seconds(be, rows)
    print(f"{len(rows)} SQuAD dev questions, default generator, greedy, {args.max_tokens} tokens")
    for name in list(variants)[1:]:
        same = sum(a == b for a, b in zip(texts["float32"], texts[name]))
        print(f"{name}: identical answers {same}/{len(rows)}")
        for metric, fn in (("EM", exact_match), ("F1", token_f1)):
            score = {n: [100 * fn(t, r["golds"]) for t, r in zip(texts[n], rows)] for n in texts}
            d = paired_bootstrap(score[name], score["float32"], seed=args.seed)
            print(
                f"  {metric}: fp32 {sum(score['float32']) / len(rows):.1f}, {name} "
                f"{sum(score[name]) / len(rows):.1f}, difference {d['diff']:+.1f} "
                f"[{d['low']:+.1f}, {d['high']:+.1f}]"
            )
        print(
            f"  prefill time ÷ fp32: {secs[name] / secs['float32']:.3f}; whole generation time ÷ fp32: "
            f"{gen_secs[name] / gen_secs['float32']:.3f}"
        )


if __name__ == "__main__":
    main()
