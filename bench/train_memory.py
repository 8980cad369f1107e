"""Peak memory of a RAFT LoRA fine-tune on the default model: micro-batches and gradient checkpointing.

    .venv/bin/python bench/train_memory.py --run RUN_DIR [--steps 3] [--configs 8x1 4x2 2x4 8x1ckpt]

RUN_DIR is a `ragtune run` folder (bench/run_squad.py makes one from SQuAD's Wikipedia paragraphs): its
training pairs and base index are the data, trained as the run's RAFT step trains them (LoRA, the run's
rank, k passages per example, 8 examples per optimizer step). Each config (`BxA`: B examples per forward,
A accumulated; `ckpt`: gradient checkpointing) trains --steps optimizer steps in a fresh process, so its
peak RSS (ru_maxrss) is its own. The first config is the baseline: the others print their peak and s/step as
ratios to it, and their losses, which show whether the arithmetic changed.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def one(run: Path, config: str, steps: int) -> dict:
    """Train in this process (called in a child); return peak RSS, time per step and the losses."""
    import resource

    from ragtune.models import default_generator_dir
    from tuner.gen_train import train_generator

    micro, accum = (int(x) for x in config.removesuffix("ckpt").split("x"))
    with tempfile.TemporaryDirectory() as out:
        r = train_generator(
            str(default_generator_dir()),
            str(run / "qa" / "train.jsonl"),
            out,
            method="lora",
            mode="raft",
            index=str(run / "index-base"),
            batch_size=micro,
            grad_accum=accum,
            gradient_checkpointing=config.endswith("ckpt"),
            max_steps=steps,
            val_fraction=0.0,
            logging_steps=1,
            seed=0,
        )
    return {
        "peak_gb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2,
        "s_per_step": r.train_seconds / r.steps,
        "losses": [round(h["loss"], 4) for h in r.train_losses],
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--configs", nargs="+", default=["8x1", "4x2", "2x4", "8x1ckpt"])
    ap.add_argument("--child", help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child:
        print(json.dumps(one(a.run, a.child, a.steps)))
        return
    rows = {}
    for config in a.configs:
        cmd = [sys.executable, __file__, "--run", str(a.run), "--steps", str(a.steps), "--child", config]
        out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
        rows[config] = json.loads(out.strip().splitlines()[-1])
        print(config, rows[config], flush=True)
    base = rows[a.configs[0]]
    print(f"\n{'config':<9} {'peak GB':>8} {'÷ base':>7} {'s/step':>7} {'÷ base':>7}  losses")
    for config, r in rows.items():
        print(
            f"{config:<9} {r['peak_gb']:8.2f} {r['peak_gb'] / base['peak_gb']:7.2f} {r['s_per_step']:7.1f} "
            f"{r['s_per_step'] / base['s_per_step']:7.2f}  {r['losses']}"
        )


if __name__ == "__main__":
    main()
