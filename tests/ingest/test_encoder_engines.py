"""The encoder's engines (retriever/openvino_backend.py): OpenVINO runs the embedded MiniLM to the same vectors as
torch (openvino-bf16 to within recall@10 0.99), so the fingerprint id is shared and an index built by one engine is
searched by the other; `auto` picks OpenVINO where it is installed, in bf16 where the CPU has it; a GPU or an
unmerged adapter runs on torch."""

from __future__ import annotations

import numpy as np
import pytest

from ragtune.errors import RagtuneError
from retriever import Encoder

TEXTS = [
    "The capital of Avalon is Brightwater.",
    "Brightwater lies on the river Sel, which floods every spring and feeds the orchards.",
    "Tomas Reed works as a baker in Greenhollow and owns three cats. " * 30,  # past 256 tokens: truncated
    "x",
]


@pytest.fixture(scope="module")
def engines(cache):
    return {name: Encoder(engine=name) for name in ("torch", "openvino")}


def test_openvino_gives_torch_s_vectors_and_fingerprint(engines, cache):
    a, b = engines["torch"].encode(TEXTS), engines["openvino"].encode(TEXTS)
    assert a.shape == b.shape == (len(TEXTS), 384) and b.dtype == np.float32
    assert np.allclose(np.linalg.norm(b, axis=1), 1.0, atol=1e-5)
    assert (a * b).sum(1).min() > 0.99999
    fa, fb = engines["torch"].fingerprint, engines["openvino"].fingerprint
    assert (fa["engine"], fb["engine"]) == ("torch", "openvino")
    assert fa["id"] == fb["id"]  # the same embedding space: an index from one is searched by the other
    assert list(cache.glob("openvino/*/model.xml")), "the converted IR is cached"


def test_openvino_bf16_moves_vectors_only_slightly_or_says_what_it_needs(engines):
    from ragtune.hardware import cpu_native_bf16

    if not cpu_native_bf16():
        with pytest.raises(RagtuneError, match="needs a CPU with native bf16"):
            Encoder(engine="openvino-bf16")
        return
    bf16 = Encoder(engine="openvino-bf16")
    a, b = engines["torch"].encode(TEXTS), bf16.encode(TEXTS)
    cos = (a * b).sum(1)
    assert cos.min() > 0.99 and cos.min() < 0.99999  # bf16 really ran, and stayed close
    assert bf16.fingerprint["engine"] == "openvino-bf16"
    assert bf16.fingerprint["id"] == engines["torch"].fingerprint["id"]


def test_single_text_and_empty_input(engines):
    ov = engines["openvino"]
    assert ov.encode("one text").shape == (384,)
    assert ov.encode([]).shape == (0, 384)
    assert ov.dimension == 384 and ov.max_seq_length == 256


@pytest.mark.parametrize(
    ("env", "expected"),
    [(None, "auto-openvino"), ("auto", "auto-openvino"), ("torch", "torch"), ("openvino", "openvino")],
)
def test_auto_picks_openvino_unless_told(monkeypatch, cache, env, expected):
    from ragtune.hardware import cpu_native_bf16

    if expected == "auto-openvino":  # bf16 where OpenVINO reads BF16 off this CPU
        expected = "openvino-bf16" if cpu_native_bf16() else "openvino"
    if env is None:
        monkeypatch.delenv("RAGTUNE_ENCODER_ENGINE", raising=False)
    else:
        monkeypatch.setenv("RAGTUNE_ENCODER_ENGINE", env)
    assert Encoder().engine == expected


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "tensorrt"}, "encoder engine must be one of auto, torch, openvino"),
        ({"engine": "openvino", "device": "cuda"}, "use engine torch"),
    ],
)
def test_bad_engine_choices_are_clear_errors(cache, kwargs, message):
    with pytest.raises(RagtuneError, match=message):
        Encoder(**kwargs)


def test_an_index_built_by_torch_is_searched_by_openvino(tmp_path, cache, engines):
    from ingest import ingest
    from retriever import Retriever

    src = tmp_path / "docs.jsonl"
    src.write_text(
        "".join(f'{{"id": "d{i}", "title": "t{i}", "text": "{t[:400]}"}}\n' for i, t in enumerate(TEXTS))
    )
    ingest([src], tmp_path / "idx", encoder=engines["torch"], show_progress=False)
    hits = {}
    for name in engines:
        r = Retriever.open(tmp_path / "idx", engine=name)
        try:
            assert r.encoder.engine == name
            hits[name] = [p.doc_id for p in r.search("Which river does Brightwater lie on?", 3)]
        finally:
            r.close()
    assert hits["torch"] == hits["openvino"] and hits["torch"][0] == "d1"
