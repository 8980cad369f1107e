"""PEFT methods: checks that need only the model's config, model loading, and the adapter for a method.

Everything in `preflight` reads config.json (and builds the model on the meta device to list its
modules), so bad input fails in a second, before any weights are loaded.
"""

from __future__ import annotations

import functools
import importlib.util
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.hardware import cpu_native_bf16
from tuner.gen_config import PEFT_LORA

log = logging.getLogger(__name__)

# All linear layers of attention and MLP: the QLoRA-paper default, better than q/v only.
_LLAMA_LIKE = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
DEFAULT_TARGETS: dict[str, list[str]] = {
    **{
        t: _LLAMA_LIKE
        for t in (
            "llama",
            "mistral",
            "qwen2",
            "qwen3",
            "gemma",
            "gemma2",
            "gemma3_text",
            "granite",
            "olmo",
            "olmo2",
            "smollm3",
            "cohere",
            "starcoder2_llama",
        )
    },
    "mixtral": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "phi3": ["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
    "phi": ["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    "gpt2": ["c_attn", "c_proj", "c_fc"],
    "gpt_neox": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "opt": ["q_proj", "k_proj", "v_proj", "out_proj", "fc1", "fc2"],
    "bloom": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
    "falcon": ["query_key_value", "dense", "dense_h_to_4h", "dense_4h_to_h"],
}


@dataclass
class ModelFacts:
    model_type: str
    max_positions: int | None
    module_names: list[str]
    hidden_size: int | None


@functools.lru_cache(maxsize=1)
def is_bitsandbytes_available() -> bool:
    return importlib.util.find_spec("bitsandbytes") is not None


def cuda_available() -> bool:
    import torch

    return torch.cuda.is_available()


def check_qlora_runtime() -> None:
    """QLoRA needs a CUDA GPU and bitsandbytes; say so before anything is loaded."""
    if not cuda_available():
        raise RagtuneError(
            "method qlora needs a CUDA GPU (4-bit bitsandbytes kernels), and none is visible; "
            "use --method lora on this machine"
        )
    if not is_bitsandbytes_available():
        raise RagtuneError(
            "method qlora needs bitsandbytes: pip install 'ragtune[gpu]' (or use --method lora)"
        )


def model_facts(base: str | Path) -> ModelFacts:
    """Architecture facts from config.json, with module names from a weightless (meta) instance."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    try:
        config = AutoConfig.from_pretrained(base)
    except (OSError, ValueError) as e:
        raise RagtuneError(f"cannot read the model config in {base}: {e}") from None
    with torch.device("meta"):
        model = AutoModelForCausalLM.from_config(config)
    names = [n for n, _ in model.named_modules() if n]
    text_cfg = config.get_text_config() if hasattr(config, "get_text_config") else config
    maxpos = next(
        (
            getattr(text_cfg, a)
            for a in ("max_position_embeddings", "n_positions", "max_seq_len")
            if isinstance(getattr(text_cfg, a, None), int)
        ),
        None,
    )
    return ModelFacts(config.model_type, maxpos, names, getattr(text_cfg, "hidden_size", None))


def default_target_modules(facts: ModelFacts) -> list[str] | str:
    if facts.model_type in DEFAULT_TARGETS:
        return DEFAULT_TARGETS[facts.model_type]
    from peft.utils.constants import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as peft_map

    return list(peft_map.get(facts.model_type, [])) or "all-linear"


def check_target_modules(targets: list[str], facts: ModelFacts) -> None:
    suffixes = {n.rsplit(".", 1)[-1] for n in facts.module_names}
    missing = [t for t in targets if t not in suffixes and t not in facts.module_names]
    if missing:
        linear_like = sorted(s for s in suffixes if not s.isdigit())
        raise RagtuneError(
            f"`target_modules` {missing} do not exist in this {facts.model_type} model; "
            f"choose from its module names, e.g. {linear_like[:20]} (or leave unset for the default)"
        )


def resolve_max_length(requested: int | None, facts: ModelFacts) -> int:
    limit = facts.max_positions
    if requested is None:
        return min(limit or 1024, 1024)
    if limit is not None and requested > limit:
        raise RagtuneError(
            f"`max_length` {requested} is over the model's limit of {limit} positions; "
            f"pass --max-length {limit} or less"
        )
    return requested


def resolve_dtype(
    name: str,
    method: str,
    *,
    cuda: bool | None = None,
    cuda_bf16: bool | None = None,
    cpuinfo: str | None = None,
) -> str:
    """The `dtype` (a DTYPES name) that `name` trains `method` in; only `auto` depends on the machine.

    auto: bfloat16 on a CUDA GPU that has it; bf16-autocast for LoRA and DoRA on a CPU with native bf16
    (AVX512-BF16 or AMX): measured on the demo's closed-book data (bench/lora_precision.py), its losses
    and exact match are within seed noise of float32's, at 1.6-1.8x the tokens/s; float32 otherwise.
    `cuda`, `cuda_bf16` and `cpuinfo` describe the machine (None: this one)."""
    if name != "auto":
        return name
    if cuda is None:
        cuda = cuda_available()
    if cuda:
        if cuda_bf16 is None:
            import torch

            cuda_bf16 = torch.cuda.is_bf16_supported()
        return "bfloat16" if cuda_bf16 else "float32"
    return "bf16-autocast" if method in PEFT_LORA and cpu_native_bf16(cpuinfo) else "float32"


def cpu_autocast(name: str, method: str, *, cuda: bool | None = None, cpuinfo: str | None = None) -> bool:
    """Mixed precision on CPU (fp32 weights, bf16 matmuls under autocast): `dtype` bf16-autocast, or auto
    where resolve_dtype picks it. It moves losses and logits in the third decimal against float32: pin
    `dtype` float32 where runs must match fp32 ones exactly."""
    if cuda is None:
        cuda = cuda_available()
    return not cuda and resolve_dtype(name, method, cuda=False, cpuinfo=cpuinfo) == "bf16-autocast"


def choose_dtype(
    name: str,
    method: str,
    *,
    cuda: bool | None = None,
    cuda_bf16: bool | None = None,
    cpuinfo: str | None = None,
) -> Any:
    """The torch dtype the weights load in (float32 under CPU autocast); machine facts as in resolve_dtype."""
    import torch

    if cuda is None:
        cuda = cuda_available()
    name = resolve_dtype(name, method, cuda=cuda, cuda_bf16=cuda_bf16, cpuinfo=cpuinfo)
    if name == "bf16-autocast":  # fp32 master weights; a GPU simply trains in bf16
        if cuda:
            return torch.bfloat16
        if not cpu_native_bf16(cpuinfo):
            raise RagtuneError(
                "`dtype` bf16-autocast needs a CPU with native bf16 (AVX512-BF16 or AMX), which this "
                "one lacks: bf16 would be emulated and slower; use --dtype auto"
            )
        return torch.float32
    if name in ("bfloat16", "float16") and not cuda:
        raise RagtuneError(f"`dtype` {name} needs a GPU here; use --dtype float32 (or auto) on CPU")
    return getattr(torch, name)


def load_base_model(base: str, method: str, dtype: Any) -> Any:
    """Load the base causal LM (4-bit NF4 for qlora) ready for training."""
    from transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {"dtype": dtype}
    if method == "qlora":
        import torch
        from transformers import BitsAndBytesConfig

        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=dtype if dtype != torch.float32 else torch.bfloat16,
        )
        kwargs["device_map"] = {"": int(os.environ.get("LOCAL_RANK", "0"))}
    model = AutoModelForCausalLM.from_pretrained(base, **kwargs)
    if method == "qlora":
        from peft import prepare_model_for_kbit_training

        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


def peft_config(
    method: str,
    *,
    r: int = 8,
    alpha: int = 16,
    dropout: float = 0.05,
    targets: Any = None,
    num_virtual_tokens: int = 16,
    hidden_size: int | None = None,
) -> Any:
    """The peft config of `method`; each method reads only its own arguments."""
    import peft

    if method in ("lora", "dora", "qlora"):
        return peft.LoraConfig(
            task_type="CAUSAL_LM",
            r=r,
            lora_alpha=alpha,
            lora_dropout=dropout,
            target_modules=targets,
            use_dora=method == "dora",
            bias="none",
        )
    if method == "prefix":
        return peft.PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=num_virtual_tokens)
    if method == "prompt":
        return peft.PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=num_virtual_tokens)
    if method == "ptuning":
        return peft.PromptEncoderConfig(
            task_type="CAUSAL_LM",
            num_virtual_tokens=num_virtual_tokens,
            encoder_hidden_size=min(hidden_size or 128, 512),
        )
    raise RagtuneError(f"unknown method {method!r}")


def wrap_model(
    model: Any, method: str, cfg: Any, facts: ModelFacts, targets: Any, adapter: str | None
) -> Any:
    """Attach a new adapter for `method`, or reopen `adapter` trainable (sequential fine-tuning)."""
    if method == "full":
        return model
    from peft import PeftModel, get_peft_model

    if adapter:
        return PeftModel.from_pretrained(model, adapter, is_trainable=True)
    if method in ("lora", "dora", "qlora"):
        pc = peft_config(
            method, r=cfg.lora_r, alpha=cfg.lora_alpha, dropout=cfg.lora_dropout, targets=targets
        )
    else:
        pc = peft_config(method, num_virtual_tokens=cfg.num_virtual_tokens, hidden_size=facts.hidden_size)
    wrapped = get_peft_model(model, pc)
    if method == "prefix":
        from transformers import AutoTokenizer

        init_prefix_from_text(wrapped, AutoTokenizer.from_pretrained(cfg.base))
    return wrapped


# The text whose keys and values start a prefix (any ordinary text works; this one suits QA).
PREFIX_INIT_TEXT = "Answer the question with the short answer only. "


def init_prefix_from_text(model: Any, tokenizer: Any, text: str = PREFIX_INIT_TEXT) -> bool:
    """Start a prefix-tuning adapter from the keys and values the model itself computes for real text.

    peft's random prefixes wreck a pretrained model at step 0 (SmolLM2-135M on four QA rows: loss 11.4
    against 4.4 without the adapter); the activations of real tokens (Li & Liang, 2021) start it where the
    model is, as if that text preceded every prompt (3.3 there, and lower after a few steps than random). Keeps peft's initialisation (and returns False) when the
    model's cache does not have the layout of the prefix (hybrid or sliding-window caches).
    """
    import torch

    n = model.peft_config[model.active_adapter].num_virtual_tokens
    ids = []
    while len(ids) < n:
        ids += tokenizer(text, add_special_tokens=not ids)["input_ids"]
    embedding = model.prompt_encoder[model.active_adapter].embedding
    base = model.get_base_model()
    was_training = base.training
    base.eval()
    with torch.no_grad():
        cache = base(
            input_ids=torch.tensor([ids[:n]], device=embedding.weight.device), use_cache=True
        ).past_key_values
        layers = [(layer.keys, layer.values) for layer in getattr(cache, "layers", [])]
        # peft reads each virtual token's row as [layer][key, value][head][head_dim]
        rows = (
            torch.cat([t[0].transpose(0, 1).reshape(n, -1) for kv in layers for t in kv], dim=1)
            if layers
            else None
        )
        ok = rows is not None and rows.shape == embedding.weight.shape
        if ok:
            embedding.weight.copy_(rows)
    base.train(was_training)
    if not ok:
        log.info(
            "prefix tuning: this model's cache layout differs from the prefix; kept peft's initialisation"
        )
    return ok


def count_params(model: Any) -> tuple[int, int]:
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return trainable, total


def adapter_base(adapter_dir: str | Path) -> str:
    """The base model folder an adapter was trained on (ragtune.json first, then adapter_config.json)."""
    from ragtune.artifacts import read_artifact

    adapter_dir = Path(adapter_dir)
    cfg_path = adapter_dir / "adapter_config.json"
    if not cfg_path.is_file():
        raise RagtuneError(
            f"{adapter_dir} holds no adapter_config.json; pass a folder written by `ragtune tune generator`"
        )
    base = (
        read_artifact(adapter_dir).get("base_model")
        or json.loads(cfg_path.read_text())["base_model_name_or_path"]
    )
    if not base or not Path(base).is_dir():
        raise RagtuneError(f"the adapter's base model {base!r} is not a folder here; pass --base MODEL_DIR")
    return str(base)


def adapter_method(adapter_dir: str | Path) -> str:
    from ragtune.artifacts import read_artifact

    method = read_artifact(adapter_dir).get("method")
    if method:
        return method
    cfg = json.loads((Path(adapter_dir) / "adapter_config.json").read_text())
    peft_type = cfg.get("peft_type", "LORA")
    return {
        "LORA": "dora" if cfg.get("use_dora") else "lora",
        "PREFIX_TUNING": "prefix",
        "PROMPT_TUNING": "prompt",
        "P_TUNING": "ptuning",
    }.get(peft_type, peft_type.lower())
