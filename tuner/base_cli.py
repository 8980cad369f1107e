"""`ragtune base build`: train the tiny embedded base generator from scratch on a corpus."""

from __future__ import annotations

import click


@click.group()
def base() -> None:
    """Build the tiny embedded base generator."""


@base.command()
@click.option(
    "--corpus",
    "corpus",
    multiple=True,
    required=True,
    type=click.Path(dir_okay=False),
    help="Text (.txt, or .jsonl with `text`) and chat (.jsonl with `messages`) files; repeatable.",
)
@click.option("--out", required=True, type=click.Path(file_okay=False), help="Output model folder.")
@click.option("--steps", default=None, type=int, help="Training steps (default: BaseTrainConfig.steps).")
@click.option("--batch-size", default=None, type=int, help="Sequences per step.")
@click.option("--lr", default=None, type=float, help="Peak learning rate.")
@click.option("--hidden-size", default=None, type=int, help="Model width.")
@click.option("--layers", default=None, type=int, help="Decoder layers.")
@click.option("--vocab-size", default=None, type=int, help="BPE vocabulary size.")
@click.option(
    "--seed", default=0, show_default=True, type=int, help="Seed (same inputs + seed = same model)."
)
@click.option("--force", is_flag=True, help="Rebuild even when --out already holds this exact build.")
def build(corpus, out, steps, batch_size, lr, hidden_size, layers, vocab_size, seed, force) -> None:
    """Train a BPE tokenizer and a tiny Llama from scratch, offline, into a plain HF folder."""
    from tuner.base_build import BaseTrainConfig, build_base
    from tuner.base_model import TinyModelConfig

    model_kw = {
        k: v
        for k, v in (("hidden_size", hidden_size), ("num_layers", layers), ("vocab_size", vocab_size))
        if v is not None
    }
    train_kw = {k: v for k, v in (("steps", steps), ("batch_size", batch_size), ("lr", lr)) if v is not None}
    try:
        cfg, train = TinyModelConfig(**model_kw), BaseTrainConfig(seed=seed, **train_kw)
    except ValueError as e:
        from ragtune.errors import RagtuneError

        raise RagtuneError(f"{e}; fix the flag") from None
    from ragtune.logs import quiet_libraries

    quiet_libraries()
    path = build_base(corpus, out, cfg, train, reuse=not force)
    click.echo(f"base model: {path}")
