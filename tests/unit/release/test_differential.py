"""The differential test judges what changed, not how much: negative flips (rows the champion got right that
the challenger gets wrong) against positive ones, overall and per actual class, rows whose error grew for
values; the trivial baseline every model must beat; a failed criterion shown in numbers with its way out."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression

from mlpipe.config import GateCfg
from mlpipe.pipeline.evaluate import baseline_metrics, metrics_for
from mlpipe.release.diff import compare_models, error_flips, flips, label_flips, render_diff
from mlpipe.release.gate import baseline_checks, flip_checks
from mlpipe.release.infra import failed_lines, how_to_accept


def test_label_flips_count_both_ways_per_class_with_the_changes_of_answer():
    y = np.array(["a", "a", "b", "b", "c", "c"])
    champion = np.array(["a", "b", "b", "a", "c", "c"])  # right on rows 0, 2, 4, 5
    challenger = np.array(["a", "a", "c", "b", "c", "a"])  # right on rows 0, 1, 3, 4
    f = label_flips(y, champion, challenger, ["a", "b", "c"])
    assert (f["negative"], f["positive"], f["rows"]) == (2, 2, 6)  # rows 2, 5 lost; rows 1, 3 gained
    assert f["per_class"] == {
        "a": {"rows": 2, "negative": 0, "positive": 1},
        "b": {"rows": 2, "negative": 1, "positive": 1},
        "c": {"rows": 2, "negative": 1, "positive": 0},
    }
    assert f["net_negative_share"] == 0.0
    assert {(c["a"], c["b"]): c["rows"] for c in f["changes"]} == {
        ("b", "a"): 1,
        ("b", "c"): 1,
        ("a", "b"): 1,
        ("c", "a"): 1,
    }


def test_error_flips_count_rows_whose_error_moved_beyond_the_margin():
    y = np.zeros(4)
    a = np.array([1.0, 1.0, 1.0, 1.0])  # MAE 1: the margin is 0.5
    b = np.array([1.4, 2.0, 0.2, -1.6])  # within, grew, shrank, grew
    f = error_flips(y, a, b, 0.5)
    assert (f["negative"], f["positive"], f["margin"]) == (2, 1, 0.5)
    assert f["net_negative_share"] == 0.25


def test_a_better_challenger_passes_though_many_answers_changed():
    y = np.array([0] * 60 + [1] * 40)
    champion = np.where(np.arange(100) < 30, 0.2, 0.8)  # rows 30-59 wrong: 70 right
    challenger = np.where(np.arange(100) < 50, 0.3, 0.7)  # rows 50-59 wrong: 90 right
    f = flips("binary", y, champion, challenger, 0.5, [0, 1])
    checks = flip_checks(f, GateCfg())
    assert all(c.passed for c in checks), [c.line() for c in checks]
    assert f["negative"] == 0 and f["positive"] == 20


def test_a_net_regression_is_refused_and_an_override_passes_it_by_name():
    y = np.array([1] * 50 + [0] * 50)
    champion = np.full(100, 0.9)
    champion[50:] = 0.1  # all right
    challenger = champion.copy()
    challenger[:5] = 0.2  # 5 positives lost: 5% net negative flips, 10% of class 1
    f = flips("binary", y, champion, challenger, 0.5, [0, 1])
    refused = {c.criterion: c for c in flip_checks(f, GateCfg()) if not c.passed}
    assert refused["diff.negative_flips"].value == 0.05 and refused["diff.negative_flips"].bound == 0.01
    assert "diff.class_regression" not in refused  # 5 of 50 rows: at the bound, not over it
    overridden = flip_checks(f, GateCfg(override_diff="new fare rules, reviewed"))
    assert all(c.passed for c in overridden)
    assert "(override: new fare rules, reviewed)" in overridden[0].detail


def test_one_broken_class_is_refused_though_the_total_balances():
    y = np.array([0] * 100 + [1] * 100 + [2] * 40)
    champion = np.eye(3)[y] * 0.8 + 0.066
    challenger = champion.copy()
    challenger[200:220] = [0.7, 0.2, 0.1]  # class 2 loses half its rows to class 0 ...
    champion[:20] = [0.1, 0.8, 0.1]  # ... while class 0 gains back as many
    f = flips("multiclass", y, champion, challenger, 0.5, [0, 1, 2])
    checks = {c.criterion: c for c in flip_checks(f, GateCfg())}
    assert checks["diff.negative_flips"].passed
    worst = checks["diff.class_regression"]
    assert not worst.passed and worst.value == 0.5 and "class '2'" in worst.detail


def test_a_regressor_is_judged_on_rows_whose_error_grew():
    y = np.linspace(0, 10, 100)
    champion = y + 1.0
    challenger = y.copy()
    challenger[:10] += 5.0  # ten rows much worse, ninety rows better
    checks = flip_checks(flips("regression", y, champion, challenger, 0.5, []), GateCfg())
    assert [c.criterion for c in checks] == ["diff.negative_flips"] and checks[0].passed
    assert flip_checks(flips("regression", y, challenger, champion, 0.5, []), GateCfg())[0].passed is False


def test_the_trivial_baseline_is_the_train_prior_on_the_test_rows():
    b = baseline_metrics("binary", np.array([0, 0, 0, 1]), np.array([0, 1, 0, 1]), 0.5, [0, 1])
    assert b["baseline.roc_auc"] == 0.5
    assert b["baseline.log_loss"] == pytest.approx(-(np.log(0.75) + np.log(0.25)) / 2, abs=1e-6)
    m = baseline_metrics(
        "multiclass", np.array(["x", "x", "y", "z"]), np.array(["x", "y"]), 0.5, ["x", "y", "z"]
    )
    assert m["baseline.accuracy"] == 0.5  # the majority class for every row
    r = baseline_metrics("regression", np.array([1.0, 3.0]), np.array([0.0, 4.0]), 0.5, [])
    assert r["baseline.rmse"] == 2.0 and r["baseline.r2"] == pytest.approx(0.0)


def test_a_model_on_noise_is_refused_for_not_beating_the_trivial_one():
    rng = np.random.default_rng(0)
    X = pd.DataFrame(rng.normal(size=(400, 20)), columns=[f"f{i}" for i in range(20)])
    y = (rng.random(400) < 0.2).astype(int)  # no signal at all
    model = LogisticRegression(C=100.0, max_iter=1000).fit(X[:300], y[:300])
    metrics = metrics_for("binary", y[300:], model.predict_proba(X[300:])[:, 1], 0.5, [0, 1])
    metrics |= baseline_metrics("binary", y[:300], y[300:], 0.5, [0, 1])
    refused = [c for c in baseline_checks(metrics, ("roc_auc", "log_loss")) if not c.passed]
    assert "baseline.log_loss" in [c.criterion for c in refused]
    assert baseline_checks({"roc_auc": 0.7}, ("roc_auc",)) == []  # a run recorded before baselines


def test_a_failed_criterion_is_shown_with_value_bound_and_the_way_to_accept_it():
    checks = flip_checks(
        {
            "kind": "answers",
            "rows": 100,
            "negative": 9,
            "positive": 2,
            "negative_share": 0.09,
            "positive_share": 0.02,
            "per_class": {},
        },
        GateCfg(),
    )
    [line] = failed_lines([vars(c) for c in checks])
    assert line.startswith("diff.negative_flips: FAIL (value 0.09, bound 0.03)")
    assert "set gate.override_diff to a reason, or `mlpipe promote <version> --reason" in line
    assert "gate.tolerance.roc_auc" in how_to_accept("metric.roc_auc")


def test_diff_of_a_multiclass_pair_speaks_of_classes_not_a_threshold():
    y = np.array(["rain", "sun", "fog", "sun"])
    a = np.array([[0.1, 0.8, 0.1], [0.1, 0.2, 0.7], [0.6, 0.2, 0.2], [0.2, 0.2, 0.6]])  # fog, rain, sun
    b = np.array([[0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    d = compare_models(a, b, "multiclass", y, 0.5, pd.DataFrame({"f": range(4)}), 2, ["fog", "rain", "sun"])
    d |= {"a": {"ref": "A", "run_id": "1" * 32}, "b": {"ref": "B", "run_id": "2" * 32}}
    text = render_diff(d)
    assert "threshold" not in text and "changed answers: 1 (25.0000%)" in text
    assert "per actual class: fog: -0/+0 of 1; rain: -0/+0 of 1; sun: -1/+0 of 2" in text
    assert "answers changed (A -> B: rows): sun -> rain: 1" in text
    assert "row 3: A sun (p=0.6) -> B rain (p=0.7); largest class probability change 0.5" in text
