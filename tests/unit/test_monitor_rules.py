"""The monitor's verdict: when drift or live performance says retrain, and when to retire."""

from __future__ import annotations

from mlpipe.monitoring import decide


def test_too_few_rows_give_no_verdict(params):
    d = decide(params.monitor, 10, None, None, None, {})
    assert not d["retrain"] and "no verdict" in d["reasons"][0]


def test_drift_over_the_bound_retrains(params):
    d = decide(params.monitor, 1000, {"drift_share": 0.8}, {"drift_share": 0.0, "columns": {}}, None, {})
    assert d["retrain"] and not d["retire"] and d["reasons"][0].startswith("input drift share 0.8")


def test_prediction_drift_retrains(params):
    d = decide(params.monitor, 1000, {"drift_share": 0.1}, {"drift_share": 1.0, "columns": {"proba": 0.3}}, None, {})
    assert d["retrain"] and "prediction drift" in d["reasons"][0]


def test_a_metric_drop_retrains_and_a_fall_below_the_floor_retires(params):
    trained = {"roc_auc": 0.70}
    calm = {"drift_share": 0.1}, {"drift_share": 0.0, "columns": {}}
    assert not decide(params.monitor, 1000, *calm, {"roc_auc": 0.68}, trained)["retrain"]
    drop = decide(params.monitor, 1000, *calm, {"roc_auc": 0.60}, trained)
    assert drop["retrain"] and not drop["retire"] and "dropped more than" in drop["reasons"][0]
    floor = decide(params.monitor, 1000, *calm, {"roc_auc": 0.50}, trained)
    assert floor["retrain"] and floor["retire"] and "retire this model" in floor["reasons"][0]
