"""The monitor's verdict: when drift or live performance says retrain, and when to retire."""

from __future__ import annotations

from mlpipe.monitoring.monitor import monitor_verdict


def test_too_few_rows_give_no_verdict(params):
    d = monitor_verdict(params.monitor, 10, None, None, None, {})
    assert not d["retrain"] and "no verdict" in d["reasons"][0]


def test_drift_over_the_bound_retrains(params):
    d = monitor_verdict(
        params.monitor, 1000, {"drift_share": 0.8}, {"drift_share": 0.0, "columns": {}}, None, {}
    )
    assert d["retrain"] and not d["retire"] and d["reasons"][0].startswith("input drift share 0.8")


def test_prediction_drift_retrains(params):
    d = monitor_verdict(
        params.monitor, 1000, {"drift_share": 0.1}, {"drift_share": 1.0, "columns": {"proba": 0.3}}, None, {}
    )
    assert d["retrain"] and "prediction drift" in d["reasons"][0]


def test_a_metric_drop_retrains_and_a_fall_below_the_floor_retires(params):
    trained = {"roc_auc": 0.70}
    calm = {"drift_share": 0.1}, {"drift_share": 0.0, "columns": {}}
    assert not monitor_verdict(params.monitor, 1000, *calm, {"roc_auc": 0.68}, trained)["retrain"]
    drop = monitor_verdict(params.monitor, 1000, *calm, {"roc_auc": 0.60}, trained)
    assert drop["retrain"] and not drop["retire"] and "dropped more than" in drop["reasons"][0]
    floor = monitor_verdict(params.monitor, 1000, *calm, {"roc_auc": 0.50}, trained)
    assert floor["retrain"] and floor["retire"] and "retire this model" in floor["reasons"][0]


def _metric(column: str, method: str, threshold: float, value: float) -> dict:
    return {
        "metric_name": f"ValueDrift(column={column})",
        "value": value,
        "config": {
            "type": "evidently:metric_v2:ValueDrift",
            "column": column,
            "method": method,
            "threshold": threshold,
        },
    }


def test_column_verdicts_follow_evidentlys_rule_per_method_and_flag_the_borderline():
    from mlpipe.monitoring.monitor import column_verdicts

    snap = {
        "metrics": [
            _metric("temp", "Wasserstein distance (normed)", 0.1, 0.1035),
            _metric("dest", "Jensen-Shannon distance", 0.1, 0.5),
            _metric("hour", "Wasserstein distance (normed)", 0.1, 0.01),
            _metric("proba", "K-S p_value", 0.05, 0.2),
        ]
    }
    v = column_verdicts(snap)
    assert v["temp"] == {
        "method": "Wasserstein distance (normed)",
        "threshold": 0.1,
        "score": 0.1035,
        "drifted": True,
        "borderline": True,
    }
    assert v["dest"]["drifted"] and not v["dest"]["borderline"]
    assert not v["hour"]["drifted"] and not v["hour"]["borderline"]
    assert not v["proba"]["drifted"] and v["proba"]["borderline"], (
        "a p-value on a sample is always borderline"
    )


def test_an_unknown_method_is_refused_by_name():
    import pytest

    from mlpipe.monitoring.monitor import column_verdicts

    with pytest.raises(ValueError, match="temp: drift method 'PSI' has no verdict rule"):
        column_verdicts({"metrics": [_metric("temp", "PSI", 0.1, 0.3)]})


def _verdicts(features, drifted: set[str], borderline: set[str]) -> dict:
    cols = [*features.columns, "proba"]
    return {
        c: {
            "method": "m",
            "threshold": 0.1,
            "score": 0.0,
            "drifted": c in drifted,
            "borderline": c in borderline,
        }
        for c in cols
    }


def test_the_decision_is_at_stake_only_when_borderline_columns_could_flip_it(params):
    from mlpipe.monitoring.monitor import decision_at_stake, summaries_from_verdicts

    f = params.features
    cols = list(f.columns)
    half = len(cols) // 2  # drift_share_max 0.5: more than half the inputs must drift
    clear = _verdicts(f, set(cols[: half + 3]), set())
    assert summaries_from_verdicts(clear, f)[0]["drift_share"] > 0.5
    assert not decision_at_stake(params.monitor, 1000, clear, f, None, {})
    near = _verdicts(f, set(cols[: half + 1]), {cols[0], cols[1]})
    assert decision_at_stake(params.monitor, 1000, near, f, None, {})
    # the predictions drifted for sure: whatever the borderline inputs say, the monitor retrains
    settled = _verdicts(f, {"proba", cols[0]}, {cols[0], cols[1]})
    assert not decision_at_stake(params.monitor, 1000, settled, f, None, {})


def test_confirm_borderline_reads_every_row_of_the_window_from_the_database(tmp_path, params):
    import json

    import numpy as np
    import pandas as pd
    import sqlalchemy as sa

    from mlpipe.monitoring.monitor import confirm_borderline, read_columns
    from mlpipe.serving.prediction_log import METADATA, PREDICTIONS

    url = f"sqlite:///{tmp_path / 'log.db'}"
    engine = sa.create_engine(url)
    METADATA.create_all(engine)
    rng = np.random.default_rng(0)
    temps = rng.normal(70, 5, 3000)
    with engine.begin() as conn:
        conn.execute(
            PREDICTIONS.insert(),
            [
                {
                    "request_id": f"r{i}",
                    "row": 0,
                    "ts": 0.0,
                    "model_name": "m",
                    "model_version": "1",
                    "latency_ms": 1.0,
                    "inputs": json.dumps({"temp": float(t), "carrier": "UA" if i % 2 else "DL"}),
                    "proba": 0.3,
                    "prediction": 0,
                    "flags": "[]",
                }
                for i, t in enumerate(temps)
            ],
        )
    engine.dispose()
    whole = read_columns(url, 2000, ["temp", "carrier", "proba"], params.features, chunk_rows=700)
    assert len(whole) == 2000 and whole["temp"].dtype == "float64" and set(whole["carrier"]) == {"UA", "DL"}
    assert np.allclose(whole["temp"], temps[-2000:])

    reference = pd.DataFrame({"temp": rng.normal(40, 5, 3000), "carrier": "UA", "proba": 0.3})
    verdicts = {
        "temp": {
            "method": "Wasserstein distance (normed)",
            "threshold": 0.1,
            "score": 0.099,
            "drifted": False,
            "borderline": True,
        },
        "carrier": {
            "method": "Jensen-Shannon distance",
            "threshold": 0.1,
            "score": 0.0,
            "drifted": False,
            "borderline": False,
        },
    }
    out = confirm_borderline(url, 2000, reference, verdicts, params.features)
    assert out["temp"]["confirmed"] and out["temp"]["drifted"] and out["temp"]["score"] > 1
    assert out["carrier"] == verdicts["carrier"], "a clear column keeps its sampled verdict"
