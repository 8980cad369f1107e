"""The OpenVINO encoder engine: the model's transformer converted to OpenVINO IR once, run in fp32.

fp32 keeps the embedding space: cosine to torch's vectors ≥ 0.99999 on SciFact abstracts, so an index built by
either engine is searched by the other (the fingerprint's `backend` stays "torch"; `engine` records which ran).
It is faster than torch eager on CPU because OpenVINO fuses attention and runs its own GEMM kernels
(bench/ingest.py measures the ratio on the machine at hand). The IR is cached under
$RAGTUNE_CACHE_DIR/openvino/<weights hash>-<recipe>/ and written atomically.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

import numpy as np

from ragtune.derived_cache import entry, prune
from ragtune.hashing import folder_hash
from ragtune.settings import publishing
from retriever.exported import PooledEncoder, trace_module

logger = logging.getLogger(__name__)
RECIPE = "ov-fp32-v1"


def available() -> bool:
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def export_ir(model_dir: Path) -> Path:
    """Convert (once) and return the cached model.xml."""
    import openvino as ov

    out = entry("openvino", f"{folder_hash(model_dir)[:24]}-{RECIPE}")
    xml = out / "model.xml"
    if xml.is_file():
        return xml
    import torch

    module, sample = trace_module(model_dir)
    logger.info("converting %s to OpenVINO IR (once)", model_dir)
    with publishing(out) as tmp, warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        converted = ov.convert_model(module, example_input=sample)
        ov.save_model(converted, str(tmp / "model.xml"), compress_to_fp16=False)
    prune(keep=out)
    return xml


class OpenVinoEncoder(PooledEncoder):
    def __init__(self, model_dir: Path, precision: str = "f32"):
        """`precision` "f32" keeps torch's vectors; "bf16" runs matmuls in bf16 (vectors move slightly:
        bench/ingest.py measures recall@10 against fp32) and needs a CPU with native bf16
        (`ragtune.hardware.cpu_native_bf16`)."""
        import openvino as ov

        super().__init__(model_dir)
        core = ov.Core()
        # an explicit hint either way: OpenVINO would otherwise pick bf16 by itself on CPUs that have it
        compiled = core.compile_model(
            str(export_ir(model_dir)),
            "CPU",
            {"INFERENCE_PRECISION_HINT": precision, "PERFORMANCE_HINT": "LATENCY"},
        )
        self._inputs = {i.get_any_name() for i in compiled.inputs}
        self._request = compiled.create_infer_request()

    def _hidden(self, feeds: dict[str, np.ndarray]) -> np.ndarray:
        with self._lock:
            result = self._request.infer({k: v for k, v in feeds.items() if k in self._inputs})
            return np.array(result[0])


def load(model_dir: Path, precision: str = "f32") -> OpenVinoEncoder:
    return OpenVinoEncoder(model_dir, precision)
