"""Operator logs: one `event=... k=v` line per event, and a stage's start, end or failure with its
duration."""

from __future__ import annotations

import logging

import pytest

from mlpipe.runtime.logs import LOGGER_NAME, event, timed


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER_NAME]


def test_event_is_one_key_value_line(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    event("split_done", rows_in=100, rows_out=80, cutoff="2013-03-20 10:00", note="")
    assert _lines(caplog) == ['event=split_done rows_in=100 rows_out=80 cutoff="2013-03-20 10:00" note=""']


def test_timed_stage_logs_start_and_end_with_duration(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    with timed("train", estimator="rf") as fields:
        fields["rows"] = 3
    start, end = _lines(caplog)
    assert start == "event=train_start estimator=rf"
    assert end.startswith("event=train_end duration_s=")
    assert end.endswith("estimator=rf rows=3")


def test_failed_stage_logs_the_error_and_reraises(caplog):
    caplog.set_level(logging.INFO, logger=LOGGER_NAME)
    with pytest.raises(KeyError):
        with timed("validate", source="data/"):
            raise KeyError("temp")
    start, failed = _lines(caplog)
    assert start == "event=validate_start source=data/"
    assert failed.startswith("event=validate_failed duration_s=")
    assert "error=KeyError" in failed
    assert caplog.records[-1].levelno == logging.ERROR
