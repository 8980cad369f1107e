"""Is LoRA with bf16 autocast as good as fp32 on the demo's data? Losses, held-out NLL and EM, per seed.

    .venv/bin/python bench/lora_precision.py                    # the demo's full preset, seeds 0 and 1
    .venv/bin/python bench/lora_precision.py --preset quick --no-em

Trains the demo's closed-book LoRA (demo/pipeline.py: the target world's training wordings, r16 on every
linear layer, lr 1e-3, batch 8 as lifecycle/training.py, one epoch, no validation split, the default generator) with
`ragtune tune generator --dtype float32` and `--dtype bf16-autocast` (fp32 master weights, bf16 matmuls;
a CPU with avx512_bf16 or AMX), for each seed, interleaved in one process. Then, per run:
- train loss: the mean of the last --last logged steps (logged every step);
- held-out NLL: nats per answer token of the demo's test questions (wordings never trained on), scored by
  eval.forget.answer_nll on the merged model in fp32, so only the training differs;
- EM on the demo's test questions (the `ft` system, in-process), with the paired bootstrap CI of every
  difference (eval.scoring.pairwise).
Noise rule: bf16 is within noise of fp32 when, for every seed, |bf16 - fp32| (same seed) is no larger
than |fp32 seed a - fp32 seed b| on the train loss and the held-out NLL, or the paired 95% CI of the EM
difference (same seed) includes 0. tokens/s ratio: bf16 ÷ fp32 of the same seed (same process).

Measured here (2026-11-30, 2 shared cores of an AMD EPYC with avx512_bf16, no AMX; full preset, 60
steps): train loss fp32/bf16 0.9876/0.9873 (seed 0), 1.0498/1.0459 (seed 1); held-out NLL 0.894/0.917,
1.252/1.047; EM 13.75/13.75, 12.50/12.50; tokens/s bf16 ÷ fp32 1.61-1.82 over two runs. Within noise:
`dtype` auto picks bf16-autocast for LoRA and DoRA on such a CPU (tuner.methods.resolve_dtype). The
per-question NLL CIs exclude 0 both ways (seed 0 worse, seed 1 better): any change of the run, a seed
too, trains a different model; neither is a systematic bf16 penalty.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

DTYPES = ("float32", "bf16-autocast")
BATCH = 8  # the lifecycle's generator batch (lifecycle/training.py), which the demo runs


def train(run, out: Path, seed: int, dtype: str):
    """The demo's closed-book fine-tune (its settings in demo.pipeline.run_config), at `seed` and `dtype`."""
    from tuner import train_generator

    cfg = run.cfg
    return train_generator(
        str(run.base_dir),
        str(run.cb_train),
        str(out),
        method="lora",
        mode="closed-book",
        epochs=cfg.generator_epochs,
        learning_rate=cfg.generator_lr,
        seed=seed,
        val_fraction=0.0,
        batch_size=BATCH,
        lora_r=cfg.lora_r,
        lora_alpha=2 * cfg.lora_r,
        cpu_threads=cfg.cpu_threads,
        dtype=dtype,
        logging_steps=1,
    )


def heldout_nll(model_dir: Path, test: Path) -> tuple[float, list[float]]:
    """(nats per answer token over the test set, per-question mean nats per token)."""
    from eval.compare import load_examples
    from eval.forget import answer_nll

    x = answer_nll(model_dir, load_examples(test)[0])
    return float(x[:, 0].sum() / x[:, 1].sum()), [float(n / t) for n, t in x]


def exact_match(models: dict[str, Path], test: Path, out: Path, seed: int, max_tokens: int) -> dict:
    from eval import run_comparison

    specs = [{"name": n, "model": str(m), "max_tokens": max_tokens} for n, m in models.items()]
    res = run_comparison(test, specs, out_dir=out, seed=seed, progress=False, resume=False)
    split = res["splits"]["test"]
    em = {n: s["metrics"]["exact_match"]["mean"] for n, s in split["systems"].items()}
    pairs = {(c["a"], c["b"]): c for c in split["comparisons"] if c["metric"] == "exact_match"}
    return {"em": em, "pairs": pairs}


def name(dtype: str, seed: int) -> str:
    return f"{'bf16' if dtype != 'float32' else 'fp32'}-s{seed}"


def pairs(seeds: list[int]) -> list[tuple[str, str]]:
    """(fp32, bf16) of each seed, then fp32 of one seed against the other: the seed noise."""
    a, b = seeds
    return [(name("float32", s), name("bf16-autocast", s)) for s in seeds] + [
        (name("float32", a), name("float32", b))
    ]


def paired_lines(per_q: dict[str, list[float]], em: dict | None, seeds: list[int]) -> list[str]:
    """Paired 95% CIs over the test questions: held-out NLL (nats/token) and EM (points), a - b."""
    from eval.stats import paired_bootstrap

    lines = []
    for a, b in pairs(seeds):
        d = paired_bootstrap(per_q[a], per_q[b], 1000, seeds[0])
        line = f"  {a} - {b}: NLL {d['diff']:+.4f} [{d['low']:+.4f}, {d['high']:+.4f}]"
        if em is not None:
            c = em["pairs"][(a, b)]
            line += f"; EM {c['diff']:+.1f} [{c['low']:+.1f}, {c['high']:+.1f}]"
        lines.append(line)
    return lines


def verdict(rows: dict[str, dict], seeds: list[int], em: dict | None) -> list[str]:
    """The noise rule of the module docstring, one line per metric and the verdict."""
    lines, losses_ok = [], True
    (fa, ba), (fb, bb), (sa, sb) = pairs(seeds)
    for metric in ("train_loss", "heldout_nll"):
        if metric not in rows[fa]:
            continue
        noise = abs(rows[sa][metric] - rows[sb][metric])
        diffs = [rows[bf][metric] - rows[fp][metric] for fp, bf in ((fa, ba), (fb, bb))]
        within = all(abs(d) <= noise for d in diffs)
        lines.append(
            f"  {metric}: bf16 - fp32 per seed {', '.join(f'{d:+.4f}' for d in diffs)}; "
            f"fp32 seed-to-seed {noise:.4f} -> {'within' if within else 'OUTSIDE'} noise"
        )
        losses_ok &= within
    em_ok = em is not None and all(
        em["pairs"][p]["low"] <= 0 <= em["pairs"][p]["high"] for p in ((fa, ba), (fb, bb))
    )
    if em is not None:
        lines.append(f"  EM: paired CI of fp32 - bf16 {'includes' if em_ok else 'EXCLUDES'} 0 for every seed")
    ok = losses_ok or em_ok
    lines.append(f"  verdict: bf16 autocast is {'within' if ok else 'NOT within'} noise of fp32")
    return lines


def measure(args: argparse.Namespace, work: Path) -> tuple[object, dict, dict, dict | None]:
    """(the demo config, figures per run, held-out NLL per question per run, EM with paired CIs)."""
    from types import SimpleNamespace

    from demo.config import PRESETS
    from demo.pipeline import write_demo_world
    from ragtune.models import resolve_generator
    from tuner import export_model

    cfg = PRESETS[args.preset]
    paths = write_demo_world(work, cfg, echo=lambda s: None)  # the world; its closed-book training set
    run = SimpleNamespace(
        cfg=cfg, base_dir=resolve_generator(cfg.generator), cb_train=paths["train_closed_book"], paths=paths
    )
    rows, models, per_q = {}, {}, {}
    for seed, dtype in itertools.product(args.seeds, DTYPES):  # interleaved: same load for both
        n = name(dtype, seed)
        res = train(run, work / "adapters" / n, seed, dtype)
        losses = [h["loss"] for h in res.train_losses]
        rows[n] = {
            "steps": res.steps,
            "first_loss": losses[0],
            "train_loss": sum(losses[-args.last :]) / len(losses[-args.last :]),
            "tokens_per_second": res.tokens_per_second,
            "train_seconds": res.train_seconds,
        }
        print(f"{n}: {json.dumps(rows[n])}", flush=True)
        if not args.no_em:
            models[n] = export_model(res.out_dir, work / "models" / n)
            rows[n]["heldout_nll"], per_q[n] = heldout_nll(models[n], run.paths["test"])
    em = None
    if not args.no_em:
        em = exact_match(models, run.paths["test"], work / "eval", args.seeds[0], run.cfg.max_tokens)
        for n, row in rows.items():
            row["em"] = em["em"][n]
    return run.cfg, rows, per_q, em


def report(cfg, args: argparse.Namespace, rows: dict, per_q: dict, em: dict | None) -> None:
    steps = rows[name("float32", args.seeds[0])]["steps"]
    print(
        f"\nclosed-book LoRA r{cfg.lora_r} on the demo's {args.preset} world ({steps} steps, batch "
        f"{BATCH}, lr {cfg.generator_lr}); train loss = mean of the last {args.last} steps; "
        "held-out NLL in nats per answer token; EM in %"
    )
    cols = ["first_loss", "train_loss", "heldout_nll", "em", "tokens_per_second", "train_seconds"]
    cols = [c for c in cols if c in next(iter(rows.values()))]
    print(f"  {'run':9s} " + " ".join(f"{c:>17s}" for c in cols))
    for n, r in rows.items():
        print(f"  {n:9s} " + " ".join(f"{r[c]:17.4f}" for c in cols))
    for s in args.seeds:
        f, b = rows[name("float32", s)], rows[name("bf16-autocast", s)]
        ratio = b["tokens_per_second"] / f["tokens_per_second"]
        print(f"  seed {s}: tokens/s bf16-autocast / fp32 = {ratio:.2f}")
    if per_q:
        print("  paired 95% CIs over the test questions (a - b):")
        for line in paired_lines(per_q, em, args.seeds):
            print(line)
    for line in verdict(rows, args.seeds, em):
        print(line)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=("full", "quick"), default="full", help="the demo's preset")
    ap.add_argument("--seeds", type=int, nargs=2, default=[0, 1])
    ap.add_argument("--last", type=int, default=10, help="logged steps averaged for the final train loss")
    ap.add_argument("--no-em", action="store_true", help="skip the held-out NLL and EM (no export)")
    ap.add_argument("--out", type=Path, help="work folder (default: a temporary one)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="lora-precision-") as tmp:
        cfg, rows, per_q, em = measure(args, args.out or Path(tmp))
    report(cfg, args, rows, per_q, em)
    if args.json:
        args.json.write_text(json.dumps({"runs": rows, "heldout_nll_per_question": per_q}, indent=2))


if __name__ == "__main__":
    main()
