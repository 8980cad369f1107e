"""DDP on CPU: the real CLI under `torchrun --nproc_per_node 2` (gloo) trains, the loss falls, one artifact."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from ragtune.artifacts import read_artifact


def test_torchrun_two_processes(tiny_generator, world, tmp_path):
    out = tmp_path / "ddp"
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ragtune",
        "tune",
        "generator",
        "--base",
        str(tiny_generator),
        "--data",
        str(world["qa"]),
        "--out",
        str(out),
        "--method",
        "lora",
        "--lr",
        "1e-2",
        "--max-steps",
        "6",
        "--batch-size",
        "4",
        "--val-fraction",
        "0.25",
        "--eval-steps",
        "6",
        "--json",
    ]
    proc = subprocess.run(
        cmd, capture_output=True, check=False, text=True, timeout=600, cwd=Path(__file__).parents[2]
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    art = read_artifact(out)
    m = art["metrics"]
    assert m["world_size"] == 2 and m["steps"] == 6
    assert m["best_eval_loss"] < m["eval_loss_before"]
    # one artifact: a single adapter and a single checkpoint folder, written by rank 0 only
    assert sorted(p.name for p in out.glob("*.safetensors")) == ["adapter_model.safetensors"]
    assert [p.name for p in (out / "checkpoints").iterdir() if p.is_dir()] == ["checkpoint-6"]
    # each rank saw half the data per step: 2 ranks x batch 4 = 8 examples per optimizer step
    state = json.loads((out / "checkpoints" / "checkpoint-6" / "trainer_state.json").read_text())
    assert state["train_batch_size"] == 4 and abs(state["epoch"] - 6 * 8 / m["n_train"]) < 0.01
