"""`export_model`: merge a trained adapter into a plain Hugging Face folder that any server loads as is.

The merge is in place (`merge_and_unload` folds each LoRA/DoRA delta into its base weight and drops
the adapter), so only one copy of the model is held; the peak resident memory of the merge is
measured and recorded in `ragtune.json` under `export`.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from pathlib import Path
from typing import Any, Self

from ragtune.artifacts import read_artifact, write_artifact
from ragtune.errors import RagtuneError
from ragtune.prompt import PROMPT_FORMAT
from tuner import methods

log = logging.getLogger(__name__)
PROMPT_METHODS = {"prefix", "prompt", "ptuning"}
# Turn-end tokens of common chat templates: generation stops on any that the vocabulary has.
STOP_TOKENS = ("<|end|>", "<|eot_id|>", "<|im_end|>", "<end_of_turn>", "<|endoftext|>")


class PeakRSS:
    """Peak resident memory of this process while the block runs (sampled every 5 ms), in MB."""

    def __init__(self) -> None:
        self.base = self.peak = _rss()
        self._stop = threading.Event()

    def __enter__(self) -> Self:
        self._t = threading.Thread(target=self._run, daemon=True)
        self._t.start()
        return self

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, _rss())

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._t.join()
        self.peak = max(self.peak, _rss())

    @property
    def delta_mb(self) -> float:
        return round((self.peak - self.base) / 2**20, 1)


def _rss() -> int:
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except OSError:  # not Linux: ru_maxrss is the lifetime peak, good enough for a bound
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _check_dirs(adapter_dir: Path, out_dir: Path) -> tuple[bool, str]:
    if not adapter_dir.is_dir():
        raise RagtuneError(f"{adapter_dir} does not exist; pass the --out folder of `ragtune tune generator`")
    is_adapter = (adapter_dir / "adapter_config.json").is_file()
    if not is_adapter and not (adapter_dir / "config.json").is_file():
        raise RagtuneError(
            f"{adapter_dir} holds neither an adapter (adapter_config.json) nor a model (config.json)"
        )
    if out_dir.exists() and any(out_dir.iterdir()):
        raise RagtuneError(f"{out_dir} already exists and is not empty; choose a new --out or delete it")
    method = read_artifact(adapter_dir).get("method") or (
        methods.adapter_method(adapter_dir) if is_adapter else "full"
    )
    if method in PROMPT_METHODS:
        raise RagtuneError(
            f"a {method} adapter adds virtual tokens, not weight deltas, so it cannot be merged into a plain "
            "model; serve it as base + adapter with transformers, or train with --method lora/dora for export"
        )
    return is_adapter, method


def export_model(adapter_dir: str | Path, out_dir: str | Path, *, dtype: str | None = None) -> Path:
    """Merge `adapter_dir` (or re-save a full fine-tune) into `out_dir`; return `out_dir`.

    Writes safetensors weights, the tokenizer with its chat template, a generation config whose
    EOS list holds the chat template's turn-end token, and `ragtune.json` (base_model, method,
    data_hash, prompt_format, metrics, export figures).
    """
    adapter_dir, out_dir = Path(adapter_dir).resolve(), Path(out_dir).resolve()
    is_adapter, method = _check_dirs(adapter_dir, out_dir)
    art = read_artifact(adapter_dir)
    base = methods.adapter_base(adapter_dir) if is_adapter else str(adapter_dir)
    t0 = time.perf_counter()
    tmp = out_dir.with_name(out_dir.name + ".tmp")
    with PeakRSS() as mem:
        model, save_dtype = _merge_into(tmp, adapter_dir, base, is_adapter, dtype)
    model_mb = round(sum(p.numel() * p.element_size() for p in model.parameters()) / 2**20, 1)
    _save_tokenizer(tmp, model, adapter_dir, base)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    if out_dir.exists():
        out_dir.rmdir()  # empty (checked above)
    tmp.replace(out_dir)
    fields = {
        **art,
        "base_model": art.get("base_model", base),
        "method": method,
        "kind": "merged",
        "prompt_format": art.get("prompt_format", PROMPT_FORMAT),
        "source_adapter": str(adapter_dir),
    }
    export = {
        "peak_rss_mb": mem.delta_mb,
        "model_mb": model_mb,
        "dtype": str(save_dtype).replace("torch.", ""),
        "seconds": round(time.perf_counter() - t0, 2),
    }
    write_artifact(out_dir, **fields, export=export)
    log.info(
        "exported %s to %s (merge peak +%.1f MB RSS for %.1f MB of weights)",
        adapter_dir,
        out_dir,
        mem.delta_mb,
        model_mb,
    )
    return out_dir


def _merge_into(
    tmp: Path, adapter_dir: Path, base: str, is_adapter: bool, dtype: str | None
) -> tuple[Any, Any]:
    """Load the base in float32, fold the adapter in (in place), cast and save the weights to `tmp`."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    save_dtype = _save_dtype(dtype, model)
    if is_adapter:
        from peft import PeftModel

        model = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    model = model.to(save_dtype)
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    return model, save_dtype


def _save_tokenizer(tmp: Path, model: Any, adapter_dir: Path, base: str) -> None:
    """The adapter's tokenizer (else the base's) and the generation config with the turn-end EOS."""
    from transformers import AutoTokenizer

    tok_src = adapter_dir if (adapter_dir / "tokenizer_config.json").is_file() else Path(base)
    tokenizer = AutoTokenizer.from_pretrained(tok_src)
    tokenizer.save_pretrained(tmp)
    _write_generation_config(tmp, model, tokenizer)


def _save_dtype(name: str | None, model: Any) -> Any:
    import torch

    if name is None:
        cfg_dtype = getattr(model.config, "dtype", None) or getattr(model.config, "torch_dtype", None)
        if isinstance(cfg_dtype, str):
            cfg_dtype = getattr(torch, cfg_dtype, None)
        return cfg_dtype if isinstance(cfg_dtype, torch.dtype) else torch.float32
    if name not in ("float32", "bfloat16", "float16"):
        raise RagtuneError(f"`dtype` must be float32, bfloat16 or float16 (got {name!r})")
    return getattr(torch, name)


def _write_generation_config(out: Path, model: Any, tokenizer: Any) -> None:
    from transformers import GenerationConfig

    gc = model.generation_config if getattr(model, "generation_config", None) else GenerationConfig()
    eos = gc.eos_token_id if isinstance(gc.eos_token_id, list) else [gc.eos_token_id]
    eos = [e for e in eos if e is not None]
    vocab = tokenizer.get_vocab()
    for t in (tokenizer.eos_token, *STOP_TOKENS):
        if t in vocab and vocab[t] not in eos:
            eos.append(vocab[t])
    gc.eos_token_id = eos[0] if len(eos) == 1 else eos
    if tokenizer.pad_token_id is not None:
        gc.pad_token_id = tokenizer.pad_token_id
    gc.save_pretrained(out)
    cfg_path = out / "config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["eos_token_id"] = gc.eos_token_id
    cfg_path.write_text(json.dumps(cfg, indent=2))
