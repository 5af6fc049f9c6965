"""The gate on the bundled history, as the retraining loop meets it: Jan-Mar trains the champion, then April,
May and June arrive. Each challenger is judged as `mlpipe run` judges it (release.gate.compare_on_rows on
the newest test split: the metric tolerances and the differential test), with the bundled params.yaml.
A challenger better on the same rows is promoted; one trained on an outdated month, or without its most
important feature, is refused, by its metrics and by the differential test."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd
import pytest

from mlpipe.config import load_params
from mlpipe.data.sources import get_source
from mlpipe.pipeline.split import split_by_time
from mlpipe.pipeline.train import fit_model
from mlpipe.release.gate import compare_on_rows, gate_verdict

pytestmark = [pytest.mark.integration, pytest.mark.slow]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def history():
    params = load_params(REPO / "params.yaml")
    rows = get_source(params, REPO)(date(2013, 1, 1), date(2013, 7, 1))
    time = params.dataset.time_column

    def until(month: int) -> pd.DataFrame:
        return rows[rows[time] < pd.Timestamp(date(2013, month, 1), tz="UTC")]

    def fit(frame: pd.DataFrame, features=params.features):
        train, _, _ = split_by_time(frame, time, params.split.test_fraction)
        target = train[params.dataset.target]
        return fit_model(params.train, features, train[features.columns], target, params.seed, params.task, 1)

    def test_rows(month: int) -> pd.DataFrame:
        return split_by_time(until(month), time, params.split.test_fraction)[1]

    return params, until, fit, test_rows


def judged(params, test, champion, challenger) -> tuple[bool, dict]:
    checks, figures = compare_on_rows(params, test, champion, challenger)
    promote, failed = gate_verdict(checks)
    return promote, {"failed": failed, "checks": {c.criterion: c for c in checks}, **figures}


def test_the_loop_promotes_the_better_model_and_refuses_outdated_or_crippled_ones(history):
    params, until, fit, test_rows = history
    v1 = fit(until(4))  # Jan-Mar: the champion
    v2 = fit(until(5))  # + April: worse than v1 on April's rows (ROC AUC -0.015): kept out
    promote, why = judged(params, test_rows(5), v1, v2)
    assert not promote and "metric.roc_auc" in why["failed"], why["failed"]

    may = test_rows(6)
    v3 = fit(until(6))  # + May: better on the same rows though ~13% of its answers changed
    promote, why = judged(params, may, v1, v3)
    assert promote, [why["checks"][c].line() for c in why["failed"]]
    assert why["changed_share"] > 0.1  # the churn the old rule refused
    negative = why["checks"]["diff.negative_flips"]
    assert negative.passed and why["flips"]["negative"] > 1000 and why["flips"]["positive"] > 1000
    gained = why["challenger_metrics"]["roc_auc"] - why["champion_metrics_same_rows"]["roc_auc"]
    assert gained > 0.02

    outdated = fit(until(3))  # trained on Jan-Feb: a month behind what the champion knew
    promote, why = judged(params, may, v3, outdated)
    assert not promote and {"metric.roc_auc", "diff.class_regression"} <= set(why["failed"]), why["failed"]

    no_hour = params.features.model_copy(
        update={"numerical": [c for c in params.features.numerical if c != "hour"]}
    )
    crippled = fit(until(6), no_hour)  # the most important feature dropped by accident
    promote, why = judged(params, may, v3, crippled)
    assert not promote and {"metric.roc_auc", "diff.negative_flips"} <= set(why["failed"]), why["failed"]

    v4 = fit(until(7))  # + June, judged against the promoted v3
    promote, why = judged(params, test_rows(7), v3, v4)
    assert promote, [why["checks"][c].line() for c in why["failed"]]
