"""Fingerprint refusal (other model, LoRA adapter) and corrupted or foreign index folders."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from ingest import ingest
from ragtune.errors import RagtuneError
from retriever import (
    Encoder,
    FingerprintMismatch,
    IndexCorrupt,
    IndexNotFound,
    KnowledgeIndex,
    Retriever,
    current_version,
)


@pytest.fixture(scope="module")
def other_model(embedder_dir, module_tmp):
    """MiniLM with one weight nudged: the same architecture, another embedding space."""
    import torch
    from sentence_transformers import SentenceTransformer

    out = module_tmp("other") / "other-minilm"
    m = SentenceTransformer(embedder_dir, device="cpu")
    with torch.no_grad():
        m[0].auto_model.embeddings.word_embeddings.weight.mul_(1.5)
    m.save(str(out))
    return out


@pytest.fixture(scope="module")
def lora_adapter(embedder_dir, module_tmp):
    """A PEFT LoRA adapter on MiniLM with non-zero B (so it changes the embeddings)."""
    from peft import LoraConfig, TaskType, get_peft_model
    from sentence_transformers import SentenceTransformer

    out = module_tmp("lora") / "adapter"
    m = SentenceTransformer(embedder_dir, device="cpu")
    cfg = LoraConfig(
        task_type=TaskType.FEATURE_EXTRACTION,
        r=4,
        lora_alpha=8,
        target_modules=["query", "value"],
        init_lora_weights=False,
    )
    get_peft_model(m[0].auto_model, cfg).save_pretrained(str(out))
    return out


@pytest.fixture(scope="module")
def built(encoder, module_tmp):
    from ingest_helpers import FACTS, write_tree

    root = module_tmp("built")
    src = write_tree(root / "src", FACTS)
    ingest([src], root / "idx", encoder=encoder, show_progress=False)
    return root


def test_other_encoder_is_refused_and_full_rebuild_fixes_it(encoder, built, other_model, tmp_path):
    idx = shutil.copytree(built / "idx", tmp_path / "idx")
    other = Encoder(other_model)
    assert (
        other.fingerprint["id"] != encoder.fingerprint["id"] and other.fingerprint["model"] == "other-minilm"
    )
    with pytest.raises(FingerprintMismatch) as e:
        Retriever(KnowledgeIndex.open(idx), other)
    msg = str(e.value)
    assert "built with encoder all-MiniLM-L6-v2" in msg and "the retriever is other-minilm" in msg
    assert f"ragtune ingest {built / 'src'} --index {idx} --full --retriever {other_model}" in msg
    with pytest.raises(FingerprintMismatch):
        Retriever.open(idx, retriever=str(other_model))
    with pytest.raises(FingerprintMismatch, match="--full --retriever"):
        ingest([built / "src"], idx, encoder=other, show_progress=False)
    assert current_version(idx) == "v000001"
    report = ingest([built / "src"], idx, encoder=other, full=True, show_progress=False)
    assert report.version == "v000002" and report.chunks_embedded == 5
    assert (
        Retriever.open(idx).encoder.fingerprint["id"] == other.fingerprint["id"]
    )  # recorded encoder is reused
    with pytest.raises(FingerprintMismatch, match="built with encoder other-minilm"):
        Retriever(KnowledgeIndex.open(idx), encoder)


def test_lora_adapter_encoder(encoder, built, lora_adapter, embedder_dir):
    with_adapter = Encoder(embedder_dir, adapter=lora_adapter)
    adapter_only = Encoder(
        lora_adapter
    )  # an adapter folder alone: its base is resolved (here: the embedded one)
    fp = with_adapter.fingerprint
    assert fp["adapter_sha256"] and fp["id"] == adapter_only.fingerprint["id"] != encoder.fingerprint["id"]
    texts = ["Brightwater lies on the river Sel.", "Ina bakes rye bread."]
    a, b, base = with_adapter.encode(texts), adapter_only.encode(texts), encoder.encode(texts)
    assert a.dtype == np.float32 and a.shape == (2, 384)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(a, b, atol=1e-6)
    assert np.abs(a - base).max() > 1e-3
    with pytest.raises(FingerprintMismatch, match="adapter"):
        Retriever(KnowledgeIndex.open(built / "idx"), with_adapter)


def _truncate(p):
    (p / "versions/v000001/index.faiss").write_bytes((p / "versions/v000001/index.faiss").read_bytes()[:100])


def _flip(p):
    f = p / "versions/v000001/chunks.sqlite"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))


def _manifest(p, text):
    (p / "versions/v000001/manifest.json").write_text(text)


CORRUPTIONS = [  # how the folder is damaged, error class, what the message must say
    ("truncated faiss", _truncate, IndexCorrupt, r"index\.faiss has 100 bytes, the manifest says \d+"),
    ("flipped sqlite", _flip, IndexCorrupt, r"chunks\.sqlite does not match the sha256 in its manifest"),
    (
        "garbage manifest",
        lambda p: _manifest(p, "{not json"),
        IndexCorrupt,
        r"manifest\.json is not a readable",
    ),
    (
        "foreign manifest",
        lambda p: _manifest(p, json.dumps({"format": "other"})),
        IndexCorrupt,
        r"is not a ragtune-index/1 manifest \(format 'other'\)",
    ),
    (
        "no manifest",
        lambda p: (p / "versions/v000001/manifest.json").unlink(),
        IndexCorrupt,
        r"manifest\.json is missing",
    ),
    (
        "garbage CURRENT",
        lambda p: (p / "CURRENT").write_text("../../etc"),
        IndexCorrupt,
        r"CURRENT holds '../../etc'",
    ),
    (
        "dangling CURRENT",
        lambda p: (p / "CURRENT").write_text("v000009\n"),
        IndexCorrupt,
        r"v000009 does not exist",
    ),
    (
        "no CURRENT",
        lambda p: (p / "CURRENT").unlink(),
        IndexCorrupt,
        r"CURRENT is missing; publish a version",
    ),
    (
        "foreign folder",
        lambda p: [shutil.rmtree(p), p.mkdir(), (p / "notes.txt").write_text("x")],
        IndexNotFound,
        r"is not a ragtune index \(no CURRENT file\)",
    ),
    (
        "no folder",
        lambda p: shutil.rmtree(p),
        IndexNotFound,
        r"no index at .*; build one with `ragtune ingest",
    ),
]


@pytest.mark.parametrize("name,damage,error,message", CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_corrupted_or_foreign_index_names_the_file_and_the_fix(built, tmp_path, name, damage, error, message):
    idx = shutil.copytree(built / "idx", tmp_path / "idx")
    damage(idx)
    with pytest.raises(error, match=message) as e:
        KnowledgeIndex.open(idx)
    assert "ragtune ingest" in str(e.value) or "ragtune index rollback" in str(e.value)
    if name in ("truncated faiss", "flipped sqlite"):  # the rebuild command names the real sources
        assert f"ragtune ingest {built / 'src'} --index {idx} --full" in str(e.value)


def test_ingest_refuses_a_foreign_folder(encoder, built, tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("precious")
    with pytest.raises(
        RagtuneError, match=r"mine is not a ragtune index and not empty \(it holds thesis.tex\)"
    ):
        ingest([built / "src"], tmp_path / "mine", encoder=encoder, show_progress=False)
    assert [p.name for p in (tmp_path / "mine").iterdir()] == ["thesis.tex"]


def test_ingest_into_a_corrupted_index_needs_full(encoder, built, tmp_path):
    idx = shutil.copytree(built / "idx", tmp_path / "idx")
    _truncate(idx)
    with pytest.raises(IndexCorrupt, match="--full"):
        ingest([built / "src"], idx, encoder=encoder, show_progress=False)
    report = ingest([built / "src"], idx, encoder=encoder, full=True, show_progress=False)
    assert report.version == "v000002" and len(KnowledgeIndex.open(idx)) == 5
