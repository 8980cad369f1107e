"""Benchmark the generator tuner; prints ratios, not pass/fail.

    .venv/bin/python bench/tune.py                 # ~100M Llama, 4 timed steps per variant, ~5 min on 2 busy cores
    .venv/bin/python bench/tune.py --steps 2 --seq 64 --skip-tiny   # quicker

On a ~100M-parameter random-init Llama (no download) it measures, each variant in a fresh process,
LoRA vs full fine-tuning: peak memory (process RSS on CPU, `max_memory_allocated` on CUDA) and time
per optimizer step, and the trainable-parameter percentage; then the peak memory of merging the
LoRA adapter into the base (`ragtune export`); then tiny-model training throughput in tokens/s
through the real `train_generator` path.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

LLAMA_100M = {
    "vocab_size": 32000,
    "hidden_size": 768,
    "intermediate_size": 2048,
    "num_hidden_layers": 12,
    "num_attention_heads": 12,
    "num_key_value_heads": 12,
    "max_position_embeddings": 1024,
    "tie_word_embeddings": True,
}


def _variant(name: str, steps: int, batch: int, seq: int, save_dir: str | None, grad_ckpt: bool) -> dict:
    """Run in a child process: build the model, train `steps` timed steps (+1 warm-up), report memory."""
    import torch

    from tuner.export import PeakRSS
    from tuner.methods import count_params

    cuda = torch.cuda.is_available()
    device = "cuda" if cuda else "cpu"
    dtype = torch.bfloat16 if cuda and torch.cuda.is_bf16_supported() else torch.float32
    torch.manual_seed(0)
    with PeakRSS() as mem:
        model = _build_model(name, device, dtype, grad_ckpt)
        trainable, total = count_params(model)
        opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
        if cuda:
            torch.cuda.reset_peak_memory_stats()
        x = torch.randint(0, LLAMA_100M["vocab_size"], (batch, seq), device=device)
        times = _timed_steps(model, opt, x, steps, cuda)
    times.sort()
    # min is the robust figure on shared cores (a step is only ever slowed down by others); median shown too
    out = {
        "variant": name,
        "trainable": trainable,
        "total": total,
        "step_s": times[0],
        "step_median_s": times[len(times) // 2],
        "peak_mb": mem.delta_mb,
        "device": device,
        "dtype": str(dtype).replace("torch.", ""),
        "threads": torch.get_num_threads(),
    }
    if cuda:
        out["peak_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
    if save_dir and name == "lora":  # for the merge measurement: base weights + adapter on disk
        model.get_base_model().save_pretrained(Path(save_dir) / "base")
        model.save_pretrained(Path(save_dir) / "adapter")
        _fix_adapter_base(Path(save_dir))
    return out


def _build_model(name: str, device: str, dtype, grad_ckpt: bool):
    """The ~100M Llama on `device`, with gradient checkpointing if asked, wrapped in LoRA for "lora"."""
    from transformers import LlamaConfig, LlamaForCausalLM

    from tuner.methods import DEFAULT_TARGETS

    model = LlamaForCausalLM(LlamaConfig(**LLAMA_100M)).to(device=device, dtype=dtype)
    if grad_ckpt:  # keep only each layer's input; recompute the rest in backward
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    if name == "lora":
        from peft import LoraConfig, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type="CAUSAL_LM",
                r=8,
                lora_alpha=16,
                lora_dropout=0.0,
                target_modules=DEFAULT_TARGETS["llama"],
            ),
        )
    return model


def _timed_steps(model, opt, x, steps: int, cuda: bool) -> list[float]:
    """Seconds of each of `steps` training steps on batch `x`, after one untimed warm-up step."""
    import torch

    times = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = model(input_ids=x, labels=x).loss
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if cuda:
            torch.cuda.synchronize()
        if i:  # the first step is warm-up (allocations, kernel choice)
            times.append(time.perf_counter() - t0)
    return times


def _fix_adapter_base(d: Path) -> None:
    from ragtune.artifacts import write_artifact

    cfg_path = d / "adapter" / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(d / "base")
    cfg_path.write_text(json.dumps(cfg))
    write_artifact(d / "adapter", base_model=str(d / "base"), method="lora")
    # the merged folder needs a tokenizer: a tiny one is enough for the memory measurement
    from tuner.base_model import train_tokenizer

    train_tokenizer(["bench text for a tokenizer"] * 4, vocab_size=300).save_pretrained(d / "adapter")


def _merge(save_dir: str) -> dict:
    from ragtune.artifacts import read_artifact
    from tuner.export import export_model

    out = export_model(Path(save_dir) / "adapter", Path(save_dir) / "merged")
    return read_artifact(out)["export"]


def _child(args: list[str]) -> dict:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, check=False, text=True, env=env, cwd=REPO
    )
    if proc.returncode:
        raise SystemExit(f"bench child {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _tiny_throughput(steps: int, threads: int) -> list[dict]:
    import logging

    import torch

    logging.disable(logging.WARNING)
    os.environ["TQDM_DISABLE"] = "1"
    torch.set_num_threads(threads)  # a ~1M model is faster on one thread when the cores are shared
    from ragtune.records import write_jsonl
    from tuner import train_generator
    from tuner.base_model import TinyModelConfig, build_untrained

    rows = [
        {
            "id": str(i),
            "question": f"What does person {i} of town {i % 17} keep in the shed?",
            "answer": f"{['bees', 'goats', 'a boat', 'old maps'][i % 4]} and {i % 9} lanterns",
            "doc_ids": [str(i)],
        }
        for i in range(400)
    ]
    res = []
    with tempfile.TemporaryDirectory() as d:
        base = build_untrained(
            [r["question"] + " " + r["answer"] for r in rows], Path(d) / "tiny", TinyModelConfig()
        )
        write_jsonl(Path(d) / "qa.jsonl", rows)
        for method in ("full", "lora"):
            r = train_generator(
                str(base),
                str(Path(d) / "qa.jsonl"),
                str(Path(d) / method),
                method=method,
                max_steps=steps,
                batch_size=16,
                val_fraction=0,
                learning_rate=1e-3,
                logging_steps=10,
            )
            res.append(
                {
                    "method": method,
                    "tokens_per_s": r.tokens_per_second,
                    "steps": r.steps,
                    "seconds": r.train_seconds,
                    "params": r.total_params,
                    "trainable_pct": r.trainable_pct,
                }
            )
    return res


def _parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument(
        "--steps", type=int, default=4, help="timed optimizer steps per variant (after 1 warm-up)"
    )
    ap.add_argument("--batch", type=int, default=2)
    ap.add_argument("--seq", type=int, default=128)
    ap.add_argument("--grad-ckpt", action="store_true", help="gradient checkpointing in both variants")
    ap.add_argument("--tiny-steps", type=int, default=40)
    ap.add_argument("--tiny-threads", type=int, default=1, help="torch threads for the tiny model")
    ap.add_argument("--skip-tiny", action="store_true")
    ap.add_argument("--skip-merge", action="store_true")
    ap.add_argument("--child", choices=["full", "lora", "merge"], help=argparse.SUPPRESS)
    ap.add_argument("--save-dir", help=argparse.SUPPRESS)
    return ap.parse_args()


def _print_report(a: argparse.Namespace, full: dict, lora: dict, merge: dict | None) -> None:
    """The full-vs-LoRA table, the ratios and the merge figures."""
    print(
        f"~{full['total'] / 1e6:.0f}M-parameter random-init Llama, batch {a.batch} x {a.seq} tokens, "
        f"{a.steps} timed steps, {full['device']} {full['dtype']}, {full['threads']} torch threads"
        f"{', gradient checkpointing' if a.grad_ckpt else ''}"
    )
    print(f"{'variant':8} {'trainable':>14} {'%':>8} {'peak MB':>10} {'min s/step':>11} {'median':>8}")
    for v in (full, lora):
        print(
            f"{v['variant']:8} {v['trainable']:>14,} {100 * v['trainable'] / v['total']:>8.3f} "
            f"{v['peak_mb']:>10.1f} {v['step_s']:>11.2f} {v['step_median_s']:>8.2f}"
        )
    print(f"LoRA / full peak memory: {lora['peak_mb'] / full['peak_mb']:.2f} (goal <= 0.5)")
    print(
        f"LoRA / full step time:   {lora['step_s'] / full['step_s']:.2f} (min over steps; "
        f"median {lora['step_median_s'] / full['step_median_s']:.2f})"
    )
    print(
        f"LoRA trainable parameters: {100 * lora['trainable'] / lora['total']:.3f}% (r=8, all attention+MLP projections)"
    )
    if merge:
        print(
            f"merge (ragtune export): peak +{merge['peak_rss_mb']:.0f} MB RSS for {merge['model_mb']:.0f} MB of "
            f"weights ({merge['peak_rss_mb'] / merge['model_mb']:.2f}x), {merge['seconds']:.1f} s"
        )


def main() -> None:
    a = _parse_args()
    if a.child == "merge":
        print(json.dumps(_merge(a.save_dir)))
        return
    if a.child:
        print(json.dumps(_variant(a.child, a.steps, a.batch, a.seq, a.save_dir, a.grad_ckpt)))
        return

    t0 = time.perf_counter()
    common = [
        "--steps",
        str(a.steps),
        "--batch",
        str(a.batch),
        "--seq",
        str(a.seq),
        *(["--grad-ckpt"] * a.grad_ckpt),
    ]
    with tempfile.TemporaryDirectory() as d:
        full = _child(["--child", "full", *common])
        lora = _child(["--child", "lora", *common, *([] if a.skip_merge else ["--save-dir", d])])
        merge = None if a.skip_merge else _child(["--child", "merge", "--save-dir", d])
    _print_report(a, full, lora, merge)
    if not a.skip_tiny:
        for r in _tiny_throughput(a.tiny_steps, a.tiny_threads):
            print(
                f"tiny model ({r['params'] / 1e6:.2f}M params, {r['method']}, {r['trainable_pct']:.1f}% trainable): "
                f"{r['tokens_per_s']:.0f} tokens/s over {r['steps']} steps ({r['seconds']:.1f} s, "
                f"{a.tiny_threads} thread)"
            )
    print(f"bench time {time.perf_counter() - t0:.0f} s")


if __name__ == "__main__":
    main()
