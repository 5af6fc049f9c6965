"""The monitor's verdict: when drift or live performance says retrain, and when to retire."""

from __future__ import annotations

from mlpipe.monitoring.monitor import monitor_verdict


def test_too_few_rows_give_no_verdict(params):
    d = monitor_verdict(params.monitor, 10, None, None, None, {}, "roc_auc")
    assert not d["retrain"] and "no verdict" in d["reasons"][0]


def test_drift_over_the_bound_retrains(params):
    d = monitor_verdict(
        params.monitor, 1000, {"drift_share": 0.8}, {"drift_share": 0.0, "columns": {}}, None, {}, "roc_auc"
    )
    assert d["retrain"] and not d["retire"] and d["reasons"][0].startswith("input drift share 0.8")


def test_prediction_drift_retrains(params):
    d = monitor_verdict(
        params.monitor,
        1000,
        {"drift_share": 0.1},
        {"drift_share": 1.0, "columns": {"proba": 0.3}},
        None,
        {},
        "roc_auc",
    )
    assert d["retrain"] and "prediction drift" in d["reasons"][0]


def test_a_metric_drop_retrains_and_a_fall_below_the_floor_retires(params):
    trained = {"roc_auc": 0.70}
    calm = {"drift_share": 0.1}, {"drift_share": 0.0, "columns": {}}
    assert not monitor_verdict(params.monitor, 1000, *calm, {"roc_auc": 0.68}, trained, "roc_auc")["retrain"]
    drop = monitor_verdict(params.monitor, 1000, *calm, {"roc_auc": 0.60}, trained, "roc_auc")
    assert drop["retrain"] and not drop["retire"] and "dropped more than" in drop["reasons"][0]
    floor = monitor_verdict(params.monitor, 1000, *calm, {"roc_auc": 0.50}, trained, "roc_auc")
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
    assert not decision_at_stake(params.monitor, 1000, clear, f, None, {}, "roc_auc")
    near = _verdicts(f, set(cols[: half + 1]), {cols[0], cols[1]})
    assert decision_at_stake(params.monitor, 1000, near, f, None, {}, "roc_auc")
    # the predictions drifted for sure: whatever the borderline inputs say, the monitor retrains
    settled = _verdicts(f, {"proba", cols[0]}, {cols[0], cols[1]})
    assert not decision_at_stake(params.monitor, 1000, settled, f, None, {}, "roc_auc")


def test_confirm_borderline_reads_every_row_of_the_window_from_the_database(tmp_path, params):
    import numpy as np
    import pandas as pd

    from mlpipe.monitoring.monitor import confirm_borderline, read_columns

    url = f"sqlite:///{tmp_path / 'log.db'}"
    rng = np.random.default_rng(0)
    temps = rng.normal(70, 5, 3000)
    _logged(url, temps)
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


def _logged(url: str, temps) -> None:
    import json

    import sqlalchemy as sa

    from mlpipe.serving.prediction_log import METADATA, PREDICTIONS

    engine = sa.create_engine(url)
    METADATA.create_all(engine)
    with engine.begin() as conn:
        conn.execute(
            PREDICTIONS.insert(),
            [
                {
                    "request_id": f"r{i}",
                    "row": 0,
                    "ts": float(i),
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


def test_the_window_sample_is_every_stride_th_id_and_its_count_holds_with_gaps_in_the_ids(tmp_path):
    import sqlalchemy as sa

    from mlpipe.monitoring.monitor import read_window
    from mlpipe.serving.prediction_log import PREDICTIONS

    url = f"sqlite:///{tmp_path / 'log.db'}"
    _logged(url, range(1000))
    window, rows = read_window(url, 600, 100)  # ids 401..1000: 600 rows, stride 6
    assert rows == 600 and list(window["temp"]) == [float(i - 1) for i in range(402, 1001, 6)]
    window, rows = read_window(url, 5000, 100)  # a window past the first id: the whole log
    assert rows == 1000 and list(window["temp"]) == [float(i - 1) for i in range(10, 1001, 10)]
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # a gap inside the window (ids 501..700) and one before it (ids 1..50)
        conn.execute(PREDICTIONS.delete().where(PREDICTIONS.c.id.between(501, 700)))
        conn.execute(PREDICTIONS.delete().where(PREDICTIONS.c.id <= 50))
    engine.dispose()
    window, rows = read_window(url, 600, 100)  # ids 401..500 and 701..1000: 400 rows, stride 4
    assert rows == 400
    assert list(window["temp"]) == [float(i - 1) for i in [*range(404, 501, 4), *range(704, 1001, 4)]]
    window, rows = read_window(url, 30, 100)  # a window under 1/16 of the ids: its range is counted
    assert rows == 30 and list(window["temp"]) == [float(i - 1) for i in range(971, 1001)]
    window, rows = read_window(url, 5000, 100)
    assert rows == 750 and len(window) == len([i for i in range(8, 1001, 8) if 50 < i <= 500 or i > 700])


def test_a_column_verdict_is_the_one_evidentlys_report_gives(params):
    import numpy as np
    import pandas as pd
    from evidently import DataDefinition, Dataset, Report
    from evidently.metrics import ValueDrift

    from mlpipe.monitoring.monitor import column_verdicts, evidently_column_verdict

    rng = np.random.default_rng(1)
    cases = {  # column: (reference, current, categorical); the method Evidently picks differs per case
        "wide": (rng.normal(0, 1, 3000), rng.normal(0.09, 1, 5000), False),  # Wasserstein
        "few": (rng.integers(0, 4, 3000).astype(float), rng.integers(0, 5, 5000).astype(float), False),  # JS
        "small": (rng.normal(0, 1, 800), rng.normal(0.2, 1, 5000), False),  # K-S on <= 1000 reference rows
        "cat": (rng.choice(["UA", "DL", "AA"], 3000), rng.choice(["UA", "DL", "B6"], 5000), True),  # JS
        "cat_small": (
            rng.choice(["UA", "DL", "AA"], 500),
            rng.choice(["UA", "DL"], 5000),
            True,
        ),  # chi-square
    }
    methods = set()
    for col, (ref, cur, categorical) in cases.items():
        ref, cur = pd.Series(ref, name=col), pd.Series(cur, name=col)
        if not categorical:  # nulls and infinities are dropped first, as Evidently does
            cur.iloc[:7] = [np.nan, np.inf, -np.inf, np.nan, np.nan, np.nan, np.nan]
        else:
            cur = cur.astype(object)
            cur.iloc[:3] = None
        defn = DataDefinition(
            numerical_columns=[] if categorical else [col], categorical_columns=[col] if categorical else []
        )
        snap = Report([ValueDrift(column=col)]).run(
            current_data=Dataset.from_pandas(cur.to_frame(), data_definition=defn),
            reference_data=Dataset.from_pandas(ref.to_frame(), data_definition=defn),
        )
        expected = column_verdicts(snap.dict())[col] | {"borderline": False, "confirmed": True}
        assert evidently_column_verdict(ref, cur, categorical) == expected, col
        methods.add(expected["method"])
    assert methods == {
        "Wasserstein distance (normed)",
        "Jensen-Shannon distance",
        "K-S p_value",
        "chi-square p_value",
    }
