"""The monitor judges each model version on its own rows: after a promotion the log still holds the old
version's answers, and the champion's verdict must not rest on them."""

from __future__ import annotations

import pytest

from mlpipe.monitoring.monitor import monitor_verdict, read_window, window_versions
from mlpipe.monitoring.versions import (
    other_version_line,
    read_versions,
    version_figures,
    versions_line,
)
from mlpipe.serving.prediction_log import PredictionLog, log_rows


def served(url: str, version: str, n: int, start: int, labelled: int, wrong: bool = False) -> None:
    """`n` rows answered by `version` in requests of 50 through the service's own log; the first `labelled`
    get their true label back as feedback (`wrong`: the model answered the opposite of it)."""
    log = PredictionLog(url, batch=200)
    rows = range(start, start + n)
    for first in range(start, start + n, 50):
        ids = [i for i in rows if first <= i < first + 50]
        records = [
            {"carrier": "UA", "origin": "EWR", "dest": "ATL", "distance": 100.0 + i % 50, "temp": 40.0}
            for i in ids
        ]
        proba = [0.9 if (i % 2 == 1) != wrong else 0.1 for i in ids]
        answers = [int(p > 0.5) for p in proba]
        log.append(log_rows(f"r{first}", records, proba, answers, [], "flights-late", version, 1.0))
    assert log.flush(30)
    for first in range(start, start + labelled, 50):
        truth = [i % 2 for i in range(first, min(first + 50, start + labelled))]
        assert log.add_feedback(f"r{first}", truth) == len(truth)
    log.close()


@pytest.fixture
def promoted(tmp_path) -> str:
    """1,001 rows answered (all labelled) by v1, then 412 by v3 (130 labelled) after v3 was promoted."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    served(url, "1", 1001, 0, 1001, wrong=True)
    served(url, "3", 412, 1001, 130)
    return url


def test_a_version_s_rows_are_read_alone_and_counted_in_the_database(promoted):
    frame, rows = read_window(promoted, 5000, 1000, model_version="3")
    assert rows == 412 and len(frame) == 412 and set(frame["model_version"]) == {"3"}
    assert frame["label"].notna().sum() == 130
    frame, rows = read_window(promoted, 5000, 100, model_version="1")  # sampled: ids 11, 22, ... 1001
    assert rows == 1001 and len(frame) == 91 and set(frame["model_version"]) == {"1"}
    assert list(frame["distance"][:3]) == [100.0 + (i - 1) % 50 for i in (11, 22, 33)]
    frame, rows = read_window(promoted, 300, 1000, model_version="1")  # the newest 300 are all v3's
    assert rows == 0 and frame.empty
    assert window_versions(promoted, 5000, 20000) == (["1", "3"], 1413)


def test_after_a_promotion_the_champion_has_no_verdict_until_it_has_rows_of_its_own(params, tmp_path):
    url = f"sqlite:///{tmp_path / 'log.db'}"
    served(url, "1", 1001, 0, 1001, wrong=True)
    windows, in_window = read_versions(url, params.monitor, "3")
    assert in_window == 1001 and list(windows) == ["1", "3"] and windows["3"].rows == 0
    line = versions_line("3", windows)
    assert line == "champion v3: 0 logged rows of its own (1,001 by v1)"
    d = monitor_verdict(
        params.monitor, windows["3"].rows, None, None, None, {"roc_auc": 0.7}, "roc_auc", own=line
    )
    assert not d["retrain"] and not d["retire"] and not d["judged"]
    assert d["reasons"] == [
        "champion v3: 0 logged rows of its own (1,001 by v1), under monitor.min_rows 200: no verdict yet"
    ]


def test_the_champion_is_judged_on_its_own_rows_and_the_others_are_information(params, promoted):
    windows, _ = read_versions(promoted, params.monitor, "3")
    line = versions_line("3", windows)
    assert line == "champion v3: 412 logged rows of its own, 130 labelled (1,001 by v1)"
    own = windows["3"]
    live = {"roc_auc": 1.0}  # v3 answered right
    d = monitor_verdict(params.monitor, own.rows, None, None, live, {"roc_auc": 0.7}, "roc_auc", own=line)
    assert d["judged"] and not d["retrain"] and not d["retire"], "v1's wrong answers are not v3's"
    figures = version_figures(windows["1"], None, params.features, params.monitor, 0.5, "binary", [0, 1])
    assert figures["rows"] == 1001 and figures["labelled"] == 1001
    assert figures["live_metrics"]["roc_auc"] == 0.0 and figures["input_drift_share"] is None
    assert other_version_line("1", figures, "roc_auc") == (
        "v1 (not the champion; information only): 1,001 rows, 1,001 labelled; live roc_auc 0.0"
    )


def test_a_sampled_champion_says_how_many_rows_were_checked_and_labelled(params, promoted):
    cfg = params.monitor.model_copy(update={"sample_rows": 100})
    windows, _ = read_versions(promoted, cfg, "1")
    own = windows["1"]
    assert own.rows == 1001 and own.checked < own.rows
    assert versions_line("1", windows) == (
        f"champion v1: 1,001 logged rows of its own ({own.checked:,} checked, {own.labelled:,} of them "
        "labelled) (412 by v3)"
    )
