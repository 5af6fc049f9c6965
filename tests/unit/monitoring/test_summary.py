"""One verdict word for the monitoring pass, shared by the Prefect summary and the terminal (they used to
be computed twice, and the summary said "retrain" where the terminal said nothing new was there)."""

from __future__ import annotations

import pytest

from mlpipe.monitoring.summary import MonitorResult, summary_lines, summary_markdown, verdict_word

BASE = {
    "judged": True,
    "retire": False,
    "retrain": False,
    "champion_run_id": "r1",
    "champion": "v1 (champion): 500 rows",
    "rows_in_window": 800,
    "rows_checked": 500,
    "read_s": 0.1,
    "input_drift": {"drift_share": 0.4},
    "prediction_drift": {"drift_share": 0.0},
    "live_metrics": {"roc_auc": 0.61},
    "metric": "roc_auc",
    "labels": 120,
    "training_metric": 0.7,
    "monitoring_run_id": "m1",
    "reasons": [],
    "version_lines": ["v2: 300 rows"],
}

LANDED = {
    "waiting": [],
    "feedback": ["b"],
    "period": None,
    "nothing": [],
    "batches": ["b"],
    "line": "landed b",
}
NOTHING_NEW = {"waiting": [], "feedback": [], "period": None, "nothing": ["no labels"], "line": "nothing new"}


@pytest.mark.parametrize(
    ("changes", "word"),
    [
        ({}, "healthy"),
        ({"judged": False, "retire": True}, "no verdict yet"),
        ({"retire": True, "retrain": True}, "RETIRE"),
        ({"retrain": True}, "retrain"),
        ({"retrain": True, "new_data": LANDED}, "retrain"),
        (
            {"retrain": True, "new_data": NOTHING_NEW},
            "retrain wanted, nothing new to train on",
        ),
    ],
)
def test_the_verdict_word(changes, word):
    r = MonitorResult.from_dict(BASE | changes)
    assert verdict_word(r) == word
    assert summary_markdown(r).startswith(f"# Monitor: {word}\n")
    assert summary_lines(r)[0].startswith(f"mlpipe monitor: {word}; 800 rows in window")


def test_the_terminal_lines_name_reasons_versions_new_data_and_the_retrain_run():
    as_dict = BASE | {
        "retrain": True,
        "reasons": ["input drift 0.4 > 0.3"],
        "new_data": LANDED,
        "retrain_run": {"state": "Completed", "summary": {"run_id": "r2"}},
    }
    r = MonitorResult.from_dict(as_dict)
    assert r.as_dict() == as_dict, "what --json prints and the Retire state carries reads back the same"
    assert summary_lines(r)[1:] == [
        "  v1 (champion): 500 rows",
        "  reason: input drift 0.4 > 0.3",
        "  v2: 300 rows",
        "  landed b",
        "  retrain flow: Completed",
    ]
