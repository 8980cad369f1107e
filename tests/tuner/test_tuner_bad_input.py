"""Bad input fails with a message naming the field and the fix, before any weights load; YAML run configs."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from cli_helpers import run_cli
from tuner_world import write_jsonl

from ragtune.errors import RagtuneError
from tuner import GeneratorConfig, train_generator
from tuner.gen_train import make_config

CONFIGS = sorted((Path(__file__).parents[2] / "configs").glob("generator_*.yaml"))


@pytest.fixture
def no_weights(monkeypatch):
    """Loading model weights is the heavy work every bad input must be refused before."""
    import transformers

    def refuse(*a, **k):
        raise AssertionError("model weights were loaded before the bad input was refused")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", refuse)


def _data(tmp_path, rows):
    return str(write_jsonl(tmp_path / "d.jsonl", rows))


CASES = {
    "unknown method": ({"method": "sgd"}, "`method` must be one of lora, dora, qlora"),
    "missing target module": ({"target_modules": ["c_attn"]}, "`target_modules` ['c_attn'] do not exist"),
    "max length over model": ({"max_length": 4096}, "`max_length` 4096 is over the model's limit of 512"),
    "unknown field": ({"lr": 0.1}, "unknown field(s) ['lr']"),
    "zero batch": ({"batch_size": 0}, "`batch_size` should be a positive integer"),
    "p_gold out of range": ({"p_gold": 1.5}, "`p_gold` must be between 0.0 and 1.0"),
    "raft without index": ({"mode": "raft"}, "mode raft needs an index"),
    "bf16 on cpu": ({"dtype": "bfloat16"}, "`dtype` bfloat16 needs a GPU"),
    "bad scheduler": ({"scheduler": "zigzag"}, "`scheduler` must be one of"),
    "missing base": ({"base": "/nonexistent/model"}, "`base` must be an existing local model folder"),
    "patience without validation": (
        {"early_stopping_patience": 2, "val_fraction": 0},
        "needs a validation split",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_config_is_refused_early(case, tiny_generator, world, tmp_path, no_weights):
    kwargs, message = CASES[case]
    if case == "bf16 on cpu":
        import torch

        if torch.cuda.is_available():
            pytest.skip("a GPU is visible")
    base = kwargs.pop("base", str(tiny_generator))
    with pytest.raises(RagtuneError) as e:
        train_generator(base, str(world["qa"]), str(tmp_path / "out"), **kwargs)
    assert message in str(e.value)


@pytest.mark.parametrize(
    "rows, message",
    [
        ([], "no examples; the file is empty"),
        ([{"question": "Where?", "answer": ""}], ":1: `answer` is empty"),
        ([{"question": "Where?", "answer": "x"}, {"question": "Who?"}], ":2: `answer` must be a string"),
    ],
)
def test_bad_data_is_refused_early(rows, message, tiny_generator, tmp_path, no_weights):
    with pytest.raises(RagtuneError, match=message):
        train_generator(str(tiny_generator), _data(tmp_path, rows), str(tmp_path / "out"))


def test_answer_past_max_length_is_refused(tiny_generator, tmp_path, no_weights):
    data = _data(
        tmp_path, [{"question": "Where? " * 40, "answer": "Selby", "doc_ids": [str(i)]} for i in range(4)]
    )
    with pytest.raises(RagtuneError, match="every example is longer than max_length=16"):
        train_generator(str(tiny_generator), data, str(tmp_path / "out"), max_length=16)


def test_cli_reports_bad_input_without_traceback(tiny_generator, world, tmp_path):
    proc = run_cli(
        "tune",
        "generator",
        "--base",
        str(tiny_generator),
        "--data",
        str(world["qa"]),
        "--out",
        str(tmp_path / "o"),
        "--method",
        "sgd",
        check=False,
    )
    assert proc.returncode == 2 and "error: `method` must be one of" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_run_configs_parse_and_name_their_command(path):
    first = path.read_text().splitlines()[0]
    assert first.startswith(f"# ragtune tune generator --config configs/{path.name} ")
    cfg = GeneratorConfig.from_dict(yaml.safe_load(path.read_text()), where=path.name)
    assert cfg.method in ("lora", "dora", "qlora")


def test_run_config_trains_with_overrides(tiny_generator, world, tmp_path):
    cfg_path = Path(__file__).parents[2] / "configs" / "generator_tiny.yaml"
    cfg = make_config(
        str(tiny_generator), str(world["qa"]), str(tmp_path / "o"), config=str(cfg_path), max_steps=2
    )
    assert cfg.lora_r == 16 and cfg.max_steps == 2 and cfg.learning_rate == 3e-3
    r = train_generator(
        str(tiny_generator),
        str(world["qa"]),
        str(tmp_path / "o"),
        config=str(cfg_path),
        max_steps=2,
        batch_size=4,
    )
    assert r.steps == 2
