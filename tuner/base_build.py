"""Train the tiny base generator from scratch: BPE tokenizer + small Llama, offline, seeded.

`build_base(corpus_files, out_dir)` reads plain text (`.txt`, or `.jsonl` rows with `text`) and chat
examples (`.jsonl` rows with `messages`, rendered through the chat template), trains a byte-level
BPE tokenizer on all of it, then trains a randomly initialised Llama on the token stream with a plain
PyTorch loop (float32, one process: the fastest setup on a few CPU cores). The result is an ordinary
transformers folder plus `ragtune.json`; a folder already built from the same inputs and settings
(same `build_hash`) is reused, not rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from tuner.base_model import TinyModelConfig, init_model, save_model, train_tokenizer

log = logging.getLogger(__name__)


@dataclass
class BaseTrainConfig:
    steps: int = field(default=2000, metadata={"help": "Optimizer steps."})
    batch_size: int = field(default=32, metadata={"help": "Sequences per step."})
    lr: float = field(default=2e-3, metadata={"help": "Peak AdamW learning rate."})
    warmup: int = field(default=100, metadata={"help": "Linear warm-up steps."})
    weight_decay: float = field(default=0.01, metadata={"help": "AdamW weight decay."})
    max_len: int = field(
        default=384, metadata={"help": "Longer sequences are truncated (from the left for chats)."}
    )
    answer_weight: float = field(
        default=1.0, metadata={"help": "Extra loss weight on assistant answer tokens."}
    )
    seed: int = field(default=0, metadata={"help": "Seed for init, shuffling and batching."})

    def __post_init__(self) -> None:
        for name in ("steps", "batch_size", "max_len"):
            if getattr(self, name) <= 0:
                raise ValueError(
                    f"`{name}` should be a positive integer but the value passed is {getattr(self, name)}"
                )
        if not self.lr > 0:
            raise ValueError(f"`lr` should be positive but the value passed is {self.lr}")


def read_corpus(files: Sequence[str | Path]) -> tuple[list[str], list[list[dict]]]:
    """Plain texts and chat conversations from `.txt` / `.jsonl` files; errors name file and line."""
    from ragtune.records import iter_jsonl

    texts: list[str] = []
    chats: list[list[dict]] = []
    for f in files:
        path = Path(f)
        if not path.is_file():
            raise RagtuneError(
                f"corpus file {path} does not exist; pass existing .txt or .jsonl files to --corpus"
            )
        if path.suffix == ".jsonl":
            for lineno, obj in iter_jsonl(path):
                if isinstance(obj.get("messages"), list):
                    chats.append(obj["messages"])
                elif isinstance(obj.get("text"), str):
                    texts.append(obj["text"])
                else:
                    raise RagtuneError(f"{path}:{lineno}: expected a `text` string or a `messages` list")
        else:
            texts.extend(p.strip() for p in path.read_text(encoding="utf-8").split("\n\n") if p.strip())
    if not texts and not chats:
        raise RagtuneError("the corpus is empty; give --corpus files with text or chat examples")
    return texts, chats


def build_hash(files: Sequence[str | Path], cfg: TinyModelConfig, train: BaseTrainConfig) -> str:
    h = hashlib.sha256()
    for f in files:
        h.update(Path(f).read_bytes())
    h.update(json.dumps([asdict(cfg), asdict(train)], sort_keys=True).encode())
    return h.hexdigest()[:16]


def encode(tok, texts: list[str], chats: list[list[dict]], max_len: int) -> list[tuple[list[int], list[int]]]:
    """Token ids per example and the positions of answer tokens (assistant turns, their `<|end|>` included)."""
    out: list[tuple[list[int], list[int]]] = []
    wrapped = [f"{tok.bos_token}{t}{tok.eos_token}" for t in texts]
    for ids in tok(wrapped, add_special_tokens=False)["input_ids"] if wrapped else []:
        out.append((ids[:max_len], []))
    rendered = [tok.apply_chat_template(m, tokenize=False) for m in chats]
    if not rendered:
        return out
    asst, end = tok.convert_tokens_to_ids("<|assistant|>"), tok.eos_token_id
    for ids in tok(rendered, add_special_tokens=False)["input_ids"]:
        ids = ids[-max_len:]
        answer, inside = [], False
        for i, t in enumerate(ids):
            if inside:
                answer.append(i)
                inside = t != end
            elif t == asst:
                inside = True
        out.append((ids, answer))
    return out


def batches(examples: list, batch_size: int, rng: random.Random):
    """Endless length-bucketed batches: shuffle, sort within windows of 50 batches, shuffle batches."""
    while True:
        order = list(range(len(examples)))
        rng.shuffle(order)
        window = 50 * batch_size
        groups = []
        for s in range(0, len(order), window):
            chunk = sorted(order[s : s + window], key=lambda i: len(examples[i][0]))
            groups.extend(chunk[j : j + batch_size] for j in range(0, len(chunk), batch_size))
        rng.shuffle(groups)
        yield from groups


def collate(examples, idx, pad_id: int, answer_weight: float):
    import torch

    L = max(len(examples[i][0]) for i in idx)
    ids = torch.full((len(idx), L), pad_id, dtype=torch.long)
    weight = torch.zeros((len(idx), L))
    for r, i in enumerate(idx):
        seq, answer = examples[i]
        ids[r, : len(seq)] = torch.tensor(seq)
        weight[r, : len(seq)] = 1.0
        weight[r, answer] = 1.0 + answer_weight
    return ids, weight


def train_model(model, examples, train: BaseTrainConfig, pad_id: int, progress: bool = True) -> list[float]:
    """The training loop; returns the loss every 50 steps."""
    import torch
    from tqdm import tqdm

    rng = random.Random(train.seed)
    decay = [p for n, p in model.named_parameters() if p.ndim >= 2]
    no_decay = [p for n, p in model.named_parameters() if p.ndim < 2]
    opt = torch.optim.AdamW(
        [{"params": decay, "weight_decay": train.weight_decay}, {"params": no_decay, "weight_decay": 0.0}],
        lr=train.lr,
        betas=(0.9, 0.95),
    )

    def lr_at(step: int) -> float:
        if step < train.warmup:
            return train.lr * (step + 1) / train.warmup
        frac = (step - train.warmup) / max(1, train.steps - train.warmup)
        return train.lr * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * frac)))

    model.train()
    losses, running = [], 0.0
    it = batches(examples, train.batch_size, rng)
    bar = tqdm(range(train.steps), desc="base model", unit="step", disable=not progress)
    for step in bar:
        ids, weight = collate(examples, next(it), pad_id, train.answer_weight)
        for g in opt.param_groups:
            g["lr"] = lr_at(step)
        logits = model(input_ids=ids, attention_mask=(weight > 0).long()).logits[:, :-1]
        w = weight[:, 1:]
        nll = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.size(-1)), ids[:, 1:].reshape(-1), reduction="none"
        )
        loss = (nll * w.reshape(-1)).sum() / w.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        running += loss.item()
        if (step + 1) % 50 == 0:
            losses.append(round(running / 50, 4))
            bar.set_postfix(loss=losses[-1])
            log.debug("step %d loss %.4f", step + 1, losses[-1])
            running = 0.0
    model.eval()
    return losses


def build_base(
    corpus_files: Sequence[str | Path],
    out_dir: str | Path,
    cfg: TinyModelConfig | None = None,
    train: BaseTrainConfig | None = None,
    *,
    reuse: bool = True,
    progress: bool = True,
) -> Path:
    """Train the tokenizer and the tiny Llama on `corpus_files`; save a plain HF folder at `out_dir`.

    Deterministic: the same files, configs and seed give the same weights. When `out_dir` already
    holds a model built from the same inputs (`ragtune.json` `build_hash`), it is returned as is.
    """
    import torch

    from ragtune.artifacts import read_artifact

    cfg = cfg or TinyModelConfig()
    train = train or BaseTrainConfig()
    out = Path(out_dir)
    files = [Path(f) for f in corpus_files]
    texts, chats = read_corpus(files)
    digest = build_hash(files, cfg, train)
    if reuse and read_artifact(out).get("build_hash") == digest and (out / "model.safetensors").is_file():
        log.info("reusing base model %s (build hash %s)", out, digest)
        return out
    t0 = time.perf_counter()
    torch.manual_seed(train.seed)
    random.seed(train.seed)
    tok = train_tokenizer(texts + [m["content"] for c in chats for m in c], cfg.vocab_size)
    examples = encode(tok, texts, chats, min(train.max_len, cfg.max_position_embeddings))
    n_tokens = sum(len(e[0]) for e in examples)
    log.info(
        "base corpus: %d texts, %d chats, %d tokens (mean %.0f per example)",
        len(texts),
        len(chats),
        n_tokens,
        n_tokens / len(examples),
    )
    model = init_model(tok, cfg, seed=train.seed)
    losses = train_model(model, examples, train, tok.pad_token_id, progress)
    seconds = time.perf_counter() - t0
    save_model(model, tok, out)
    _record(out, model, files, cfg, train, digest, losses, seconds, n_tokens)
    log.info("built base model %s in %.0f s", out, seconds)
    return out


def _record(
    out: Path,
    model: Any,
    files: Sequence[Path],
    cfg: TinyModelConfig,
    train: BaseTrainConfig,
    digest: str,
    losses: list[float],
    seconds: float,
    n_tokens: int,
) -> None:
    """ragtune.json of a built base: its build hash, configs, corpus files and training figures."""
    from ragtune.artifacts import write_artifact

    write_artifact(
        out,
        base_model=None,
        method="from-scratch",
        build_hash=digest,
        model_config=asdict(cfg),
        train_config=asdict(train),
        corpus=[f.name for f in files],
        parameters=sum(p.numel() for p in model.parameters()),
        metrics={
            "train_seconds": round(seconds, 1),
            "final_loss": losses[-1] if losses else None,
            "loss_every_50_steps": losses,
            "corpus_tokens": n_tokens,
        },
    )
