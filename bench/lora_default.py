"""LoRA training speed on the real default generator (SmolLM2-135M-Instruct); prints ratios, not pass/fail.

    .venv/bin/python bench/lora_default.py                  # RAG-shaped batches 8 x 320, answer 6 tokens
    .venv/bin/python bench/lora_default.py --seq 64 --steps 3

One process, the same model and batches for every variant, interleaved rounds (best of --rounds, since
a step on shared cores is only ever slowed down by others):
- baseline: fp32, the model's own loss (logits for every position over the 49,152-word vocabulary);
- answer-logits: fp32, `tuner.answer_loss.AnswerLogitsTrainer`'s loss (logits only where a label is),
  what `ragtune tune generator` uses for LoRA, DoRA and full fine-tuning;
- answer-logits+bf16: the same under torch.autocast("cpu", bfloat16) (fp32 master weights), what
  `ragtune tune generator` uses for LoRA and DoRA on a CPU with native bf16 (avx512_bf16 or AMX; dtype
  auto, or bf16-autocast; `--dtype float32` turns it off). bench/lora_precision.py measures its quality;
- each variant's loss on the same batch, to show they compute the same thing (bf16: within rounding).
tokens/s counts every input token (prompt and answer) of the batch per optimizer step.
"""

from __future__ import annotations

import argparse
import resource
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def build(r: int):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from ragtune.models import resolve_generator
    from tuner.methods import DEFAULT_TARGETS

    folder = resolve_generator("default")
    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    cfg = LoraConfig(
        task_type="CAUSAL_LM",
        r=r,
        lora_alpha=2 * r,
        lora_dropout=0.0,
        target_modules=DEFAULT_TARGETS["llama"],
    )
    return get_peft_model(model, cfg)


def batch(n: int, seq: int, answer: int, vocab: int):
    import torch

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(100, vocab, (n, seq), generator=g)
    labels = torch.full_like(ids, -100)
    labels[:, seq - answer :] = ids[:, seq - answer :]
    return {"input_ids": ids, "attention_mask": torch.ones_like(ids), "labels": labels}


def step(model, opt, inputs, variant: str) -> tuple[float, float]:
    import contextlib

    import torch

    from tuner.answer_loss import AnswerLogitsTrainer

    t0 = time.perf_counter()
    bf16 = variant.endswith("+bf16")
    with torch.autocast("cpu", dtype=torch.bfloat16) if bf16 else contextlib.nullcontext():
        if variant == "baseline":
            loss = model(**inputs).loss
        else:
            loss = AnswerLogitsTrainer.compute_loss(None, model, inputs)
    loss.backward()
    opt.step()
    opt.zero_grad(set_to_none=True)
    return time.perf_counter() - t0, float(loss.detach())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument(
        "--seq", type=int, default=320, help="tokens per example (a RAFT example with 3 passages)"
    )
    ap.add_argument("--answer", type=int, default=6, help="labelled tokens at the end of each example")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--lora-r", type=int, default=16)
    args = ap.parse_args()
    import torch

    torch.manual_seed(0)
    model = build(args.lora_r)
    model.train()
    opt = torch.optim.SGD(
        [p for p in model.parameters() if p.requires_grad], lr=0.0
    )  # lr 0: weights stay put
    inputs = batch(args.batch, args.seq, args.answer, model.config.vocab_size)
    variants = ("baseline", "answer-logits", "answer-logits+bf16")
    step(model, opt, inputs, "baseline")  # warm-up
    best = {v: float("inf") for v in variants}
    losses = {}
    for _ in range(args.rounds):
        for v in variants:
            dt, loss = step(model, opt, inputs, v)
            best[v] = min(best[v], dt)
            losses[v] = loss
    tokens = args.batch * args.seq
    print(
        f"LoRA r{args.lora_r} on SmolLM2-135M-Instruct, batch {args.batch} x {args.seq} tokens, answer "
        f"{args.answer} tokens, {torch.get_num_threads()} threads, best of {args.rounds}"
    )
    for v in variants:
        print(
            f"  {v:14s} {best[v]:6.2f} s/step  {tokens / best[v]:7.1f} tokens/s  loss {losses[v]:.6f}  "
            f"x{best['baseline'] / best[v]:.2f} vs baseline"
        )
    print(
        f"  peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; loss difference "
        f"answer-logits {abs(losses['baseline'] - losses['answer-logits']):.2e}, "
        f"+bf16 autocast {abs(losses['baseline'] - losses['answer-logits+bf16']):.2e}"
    )


if __name__ == "__main__":
    main()
