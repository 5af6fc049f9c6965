"""Deterministic failures (bad config, bad data, a source that raises, a refused model) are not retried:
the flow fails at once with the one line; transient ones (I/O, a busy store) go to the retry policy."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlpipe.errors import ConfigError, DataError, MissingInput, ModelRefused, ToolError
from mlpipe.flows.retrain import TRANSIENT, retry_only_transient


@pytest.mark.parametrize(
    "exc",
    [
        ConfigError("x"),
        DataError("dataset.source my:load: raised ValueError"),
        MissingInput("f"),
        ModelRefused("m"),
    ],
)
def test_a_deterministic_failure_is_not_retried(exc):
    assert retry_only_transient(None, None, SimpleNamespace(data=exc)) is False


@pytest.mark.parametrize("exc", [OSError("disk"), ToolError("dvc push failed"), TimeoutError()])
def test_a_transient_failure_goes_to_the_retry_policy(exc):
    assert retry_only_transient(None, None, SimpleNamespace(data=exc)) is True


def test_every_retried_task_uses_the_rule():
    assert TRANSIENT["retry_condition_fn"] is retry_only_transient and TRANSIENT["retries"] > 0
