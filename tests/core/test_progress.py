"""`RAGTUNE_PROGRESS` turns ragtune's bars off, the trainers' included (`ragtune demo --no-progress`)."""

from __future__ import annotations

import pytest

from ragtune.logs import progress_enabled


@pytest.mark.parametrize(
    ("value", "enabled"),
    [(None, True), ("1", True), ("0", False), ("false", False), ("Off", False), ("yes", True)],
)
def test_progress_enabled_reads_the_variable_when_asked(monkeypatch, value, enabled):
    if value is None:
        monkeypatch.delenv("RAGTUNE_PROGRESS", raising=False)
    else:
        monkeypatch.setenv("RAGTUNE_PROGRESS", value)
    assert progress_enabled() is enabled


def test_the_training_bar_follows_it(monkeypatch):
    from types import SimpleNamespace

    from tuner.runtime import quiet_progress_callback

    state = SimpleNamespace(is_world_process_zero=True, max_steps=3, global_step=0)
    for value, drawn in (("0", False), ("1", True)):
        monkeypatch.setenv("RAGTUNE_PROGRESS", value)
        cb = quiet_progress_callback()
        cb.on_train_begin(None, state, None)
        assert (cb.bar is not None) is drawn
        cb.on_train_end(None, state, None)
