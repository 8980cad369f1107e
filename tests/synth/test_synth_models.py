"""`ragtune synth` through the real command line with real models: the tiny generator in process, a second
ragtune server as the OpenAI-compatible generator, and the bad inputs a user meets first."""

from __future__ import annotations

import json
import socket

import pytest
from cli_helpers import run_cli
from synth_helpers import ScriptedGenerator, is_read_back

from ragtune.errors import RagtuneError
from ragtune.records import load_qa
from synth import OUTPUT_FILES, PROGRESS_FILE, SynthConfig, synthesize
from synth.progress import READ_BACK_FILE
from synth.readback import READ_BACK_MAX_TOKENS

API_KEY = "synth-test-key-0123456789"
ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # tiny models run faster on one thread of the shared CPU


def synth(index, out, *args, check=False):
    return run_cli(
        "synth", "--index", str(index), "--out", str(out), "--no-progress", *args, check=check, env=ONE_THREAD
    )


def assert_error(proc, message: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert f"error: {message}" in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture(scope="module")
def tiny_server(tiny_generator):
    """A second `ragtune serve` (no index, an API key) serving the tiny generator."""
    from serve import start_server

    handle = start_server(
        tiny_generator, None, api_key=API_KEY, extra_args=["--max-tokens-cap", "64"], env=ONE_THREAD
    )
    try:
        yield handle
    finally:
        handle.stop()


def test_tiny_model_in_process_garbage_is_a_clear_error(synth_index, tiny_generator, tmp_path):
    proc = synth(
        synth_index, tmp_path, "--generator", str(tiny_generator), "--writer", "generator", "-n", "1",
        "--max-tokens", "8", "--no-read-back",
    )  # fmt: skip
    assert_error(proc, "no pair passed the checks (10 written from 10 chunks; dropped: not_a_question")
    assert not any((tmp_path / name).exists() for name in OUTPUT_FILES)
    assert len((tmp_path / PROGRESS_FILE).read_text().splitlines()) == 10


def test_tiny_model_writes_nothing_usable_and_the_template_is_the_floor(
    synth_index, tiny_generator, tmp_path
):
    """The untrained tiny generator's questions are all refused; writer auto keeps the template's."""
    proc = synth(
        synth_index, tmp_path, "--generator", str(tiny_generator), "--max-tokens", "8", "--no-read-back",
        "--writer", "auto", "--json", check=True,
    )  # fmt: skip
    report = json.loads(proc.stdout)
    assert report["generated"] == 20 and report["kept"] == 20, report
    assert report["writers"]["generator"]["kept"] == 0 and report["writers"]["template"]["kept"] == 20
    assert sum(report["replaced"].values()) == 20
    rows = [ex for name in OUTPUT_FILES for ex in load_qa(tmp_path / name)]
    assert len(rows) == 20 and all(ex.answer in ex.context and ex.question.endswith("?") for ex in rows)


class TinyReader(ScriptedGenerator):
    """Scripted pairs (that pass the other checks), read back by a real serve Generator."""

    def __init__(self, real):
        super().__init__()
        self.real, self.options = real, []

    def generate(self, messages, **kw):
        if not all(is_read_back(m) for m in messages):
            return super().generate(messages, **kw)
        self.read_backs += len(messages)
        self.options.append(kw)
        return self.real.generate(messages, **kw)


def test_tiny_model_reads_back_through_serve(synth_index, tiny_generator, tmp_path):
    """The untrained tiny model answers none of the questions: read-back drops every pair (rendered with its
    chat template, batched, greedy); without read-back the same cached pairs are all kept."""
    from serve import load_generator

    real = load_generator(str(tiny_generator), max_batch_size=4)
    try:
        cfg = {
            "index": str(synth_index),
            "out_dir": str(tmp_path),
            "batch_size": 4,
            "questions_per_chunk": 1,
            "writer": "auto",
        }
        gen = TinyReader(real)
        with pytest.raises(
            RagtuneError, match=r"dropped: reader_disagrees 10\).*--no-read-back keeps the pairs"
        ):
            synthesize(SynthConfig(**cfg), generator=gen, generator_id={"model": "tiny"}, progress=False)
        assert (gen.prompts, gen.read_backs, len(gen.options)) == (10, 10, 3)
        assert gen.options[0] == {
            "max_tokens": READ_BACK_MAX_TOKENS,
            "stop": None,
            "seed": 0,
            "temperature": 0.0,
        }
        reads = [json.loads(line) for line in (tmp_path / READ_BACK_FILE).read_text().splitlines()]
        assert len(reads) == 10 and all(isinstance(r["text"], str) for r in reads)
        again = TinyReader(real)
        report = synthesize(
            SynthConfig(**cfg, read_back=False),
            generator=again,
            generator_id={"model": "tiny"},
            progress=False,
        )
        assert report.kept == 10 and again.prompts == again.read_backs == 0
    finally:
        real.close()


def test_second_ragtune_server_as_the_generator(synth_index, tiny_server, tmp_path):
    proc = synth(
        synth_index, tmp_path, "--generator", tiny_server.url, "--api-key", API_KEY, "--max-tokens", "4",
        "--writer", "generator", "--no-read-back",
    )  # fmt: skip
    # The tiny model's context is 512 tokens and its small vocabulary makes some prompts overflow it: the
    # server refuses those, and they are counted skips.
    assert_error(proc, "no pair passed the checks (20 written from 10 chunks; dropped: generation_failed")
    rows = [json.loads(line) for line in (tmp_path / PROGRESS_FILE).read_text().splitlines()]
    assert len(rows) == 20 and any(isinstance(r["text"], str) for r in rows)  # answered through the server


def test_wrong_key_and_unknown_model_at_the_url(synth_index, tiny_server, tmp_path):
    assert_error(
        synth(synth_index, tmp_path, "--generator", tiny_server.base_url, "--api-key", "wrong"),
        f"the generator URL {tiny_server.base_url} refused the key",
    )
    assert_error(
        synth(
            synth_index, tmp_path, "--generator", tiny_server.url, "--api-key", API_KEY, "--model", "gpt-9"
        ),
        f"the generator URL {tiny_server.url} serves tiny_generator0, not --model gpt-9",
    )
    assert not (tmp_path / PROGRESS_FILE).exists()


def test_unreachable_url(synth_index, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = synth(synth_index, tmp_path, "--generator", f"http://127.0.0.1:{port}")
    assert_error(proc, f"the generator URL http://127.0.0.1:{port} is unreachable")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--generator", "/no/such/model"], "--generator /no/such/model is not a local folder"),
        (
            ["--questions-per-chunk", "0"],
            "`questions_per_chunk` should be a positive integer but the value passed is 0",
        ),
    ],
)
def test_bad_options(synth_index, tmp_path, args, message):
    assert_error(synth(synth_index, tmp_path, *args), message)


def test_empty_index_is_a_clear_error(empty_index, tmp_path):
    assert_error(synth(empty_index, tmp_path), f"index {empty_index} holds no chunks")


@pytest.mark.slow
def test_default_model_behind_a_ragtune_server_writes_usable_pairs(synth_index, tmp_path):
    """The embedded SmolLM2-135M-Instruct, served by a second ragtune server, writes pairs that pass."""
    from serve import start_server

    with start_server("default", None, api_key=API_KEY) as srv:
        proc = synth(
            synth_index, tmp_path, "--generator", srv.url, "--api-key", API_KEY, "--json", check=True
        )
    report = json.loads(proc.stdout)
    assert report["generated"] == 20 and report["kept"] >= 1, report
    assert report["generator"]["url"] == srv.base_url
    kept = [
        ex for name in OUTPUT_FILES if (tmp_path / name).stat().st_size for ex in load_qa(tmp_path / name)
    ]
    assert len(kept) == report["kept"] and all(ex.answer in ex.context for ex in kept)
