"""The generator config: one class per method family, validated at construction, every problem in one error,
settings that do not apply to the method refused; configs saved by earlier runs still load. No model loads."""

from __future__ import annotations

import json

import pytest
from cli_helpers import run_cli

from ragtune.errors import RagtuneError
from tuner import FullGeneratorConfig, GeneratorConfig, LoraGeneratorConfig, PromptGeneratorConfig
from tuner.gen_config import config_defaults

# method -> the class that configures it
FAMILIES = {
    "lora": LoraGeneratorConfig,
    "dora": LoraGeneratorConfig,
    "qlora": LoraGeneratorConfig,
    "prefix": PromptGeneratorConfig,
    "prompt": PromptGeneratorConfig,
    "ptuning": PromptGeneratorConfig,
    "full": FullGeneratorConfig,
}


@pytest.mark.parametrize("method", list(FAMILIES))
def test_from_dict_picks_the_methods_class(method):
    cfg = GeneratorConfig.from_dict({"method": method})
    assert type(cfg) is FAMILIES[method] and cfg.method == method
    assert hasattr(cfg, "lora_r") == (FAMILIES[method] is LoraGeneratorConfig)
    assert hasattr(cfg, "num_virtual_tokens") == (FAMILIES[method] is PromptGeneratorConfig)


# (fields given, what the one error must say)
NOT_APPLYING = [
    (
        {"method": "prefix", "lora_r": 8},
        "`lora_r` does not apply to method prefix (only lora, dora, qlora use it)",
    ),
    ({"method": "full", "target_modules": ["q_proj"]}, "`target_modules` does not apply to method full"),
    (
        {"method": "lora", "num_virtual_tokens": 8},
        "`num_virtual_tokens` does not apply to method lora (only prefix",
    ),
    ({"mode": "closed-book", "p_gold": 0.5}, "`p_gold` shapes RAFT examples only and no task here is RAFT"),
]


@pytest.mark.parametrize(
    ("given", "message"), NOT_APPLYING, ids=[next(iter(set(g) - {"method", "mode"})) for g, _ in NOT_APPLYING]
)
def test_a_field_that_does_not_apply_is_refused(given, message):
    with pytest.raises(RagtuneError) as e:
        GeneratorConfig.from_dict(given)
    assert message in str(e.value)


def test_raft_fields_apply_when_a_task_is_raft():
    cfg = GeneratorConfig.from_dict(
        {
            "tasks": [{"data": "a.jsonl"}, {"data": "a.jsonl", "mode": "raft", "index": "i"}],
            "k": 2,
            "p_gold": 0.5,
        }
    )
    assert (cfg.k, cfg.p_gold) == (2, 0.5)


def test_every_problem_is_reported_at_once():
    with pytest.raises(RagtuneError) as e:
        GeneratorConfig.from_dict(
            {
                "method": "prompt",
                "lora_alpha": 4,
                "batch_size": 0,
                "scheduler": "zigzag",
                "num_virtual_tokens": -1,
                "lr": 1,
            }
        )
    text = str(e.value)
    assert text.startswith("5 problems in config:")
    for part in (
        "unknown field(s) ['lr']",
        "`lora_alpha` does not apply to method prompt",
        "`batch_size` should be a positive integer (got 0)",
        "`scheduler` must be one of",
        "`num_virtual_tokens` should be a positive integer (got -1)",
    ):
        assert part in text


def test_a_config_is_validated_when_built():
    with pytest.raises(RagtuneError, match=r"2 problems in LoraGeneratorConfig:\n  - `grad_accum`"):
        LoraGeneratorConfig(lora_r=0, grad_accum=0)
    with pytest.raises(RagtuneError, match="`method` prefix is configured by PromptGeneratorConfig"):
        LoraGeneratorConfig(method="prefix")


def test_saved_configs_load():
    # a run saved before the per-method classes recorded every field of every method
    old = {**config_defaults(), "method": "ptuning", "base": "/m", "out_dir": "/o", "data": "/d.jsonl"}
    cfg = GeneratorConfig.from_saved(json.loads(json.dumps(old)))
    assert type(cfg) is PromptGeneratorConfig and cfg.method == "ptuning" and cfg.base == "/m"
    assert not hasattr(cfg, "lora_r")
    assert GeneratorConfig.from_saved(json.loads(json.dumps(cfg.to_dict()))) == cfg


def test_cli_refuses_a_flag_that_does_not_apply(tmp_path):
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "Q?", "answer": "a"}\n')
    proc = run_cli(
        "tune",
        "generator",
        "--base",
        str(tmp_path / "none"),
        "--data",
        str(data),
        "--out",
        str(tmp_path / "out"),
        "--method",
        "prefix",
        "--lora-r",
        "8",
        check=False,
    )
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert "2 problems" in proc.stderr and "`lora_r` does not apply to method prefix" in proc.stderr
    assert "`base` must be an existing local model folder" in proc.stderr
