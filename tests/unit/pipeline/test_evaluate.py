"""Evaluation: metrics on hand-made cases, the prediction table, its hash, and a thinned ROC curve."""

from __future__ import annotations

import math

import numpy as np
from sklearn.linear_model import LogisticRegression, Ridge

from mlpipe.model.outputs import classes_of, labels_from, scores, task_of
from mlpipe.pipeline.evaluate import (
    compute_metrics,
    metrics_for,
    prediction_table,
    predictions_sha256,
    roc_table,
    save_plot_images,
    save_task_plots,
    task_prediction_table,
)


def test_perfect_predictions_score_perfectly():
    y = np.array([0, 0, 1, 1, 0, 1])
    proba = np.array([0.1, 0.2, 0.9, 0.8, 0.3, 0.7])
    m = compute_metrics(y, proba, threshold=0.5)
    assert m["roc_auc"] == 1.0
    assert m["average_precision"] == 1.0
    assert m["accuracy"] == 1.0
    assert m["precision"] == 1.0 and m["recall"] == 1.0 and m["f1"] == 1.0
    assert m["positive_rate"] == 0.5
    assert m["predicted_positive_rate"] == 0.5
    assert m["n_test"] == 6 and isinstance(m["n_test"], int)


def test_metrics_on_a_hand_counted_case():
    y = np.array([1, 1, 0, 0])
    proba = np.array([0.9, 0.4, 0.6, 0.1])  # one hit, one miss, one false alarm, one correct reject
    m = compute_metrics(y, proba, threshold=0.5)
    assert m["accuracy"] == 0.5
    assert m["precision"] == 0.5 and m["recall"] == 0.5
    assert m["roc_auc"] == 0.75
    assert m["brier"] == round((0.01 + 0.36 + 0.36 + 0.01) / 4, 6)
    assert m["log_loss"] == round(-np.mean(np.log([0.9, 0.4, 0.4, 0.9])), 6)


def test_confidently_wrong_predictions_give_a_finite_log_loss():
    m = compute_metrics(np.array([1, 0]), np.array([0.0, 1.0]), threshold=0.5)
    assert math.isfinite(m["log_loss"]) and m["log_loss"] > 10
    assert m["roc_auc"] == 0.0 and m["brier"] == 1.0


def test_a_probability_on_the_threshold_counts_as_positive():
    m = compute_metrics(np.array([1, 0]), np.array([0.5, 0.2]), threshold=0.5)
    assert m["accuracy"] == 1.0
    assert compute_metrics(np.array([1, 0]), np.array([0.5, 0.2]), threshold=0.6)["accuracy"] == 0.5


def test_single_class_test_set_gives_nan_ranking_metrics_not_an_error():
    m = compute_metrics(np.array([0, 0, 0]), np.array([0.1, 0.6, 0.3]), threshold=0.5)
    assert math.isnan(m["roc_auc"]) and math.isnan(m["average_precision"])
    assert m["accuracy"] == round(2 / 3, 6)
    assert m["precision"] == 0.0  # zero_division, no warning-as-error


def test_metrics_are_rounded_for_readable_diffs():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 50)
    m = compute_metrics(y, rng.uniform(size=50), threshold=0.5)
    for key, value in m.items():
        if key != "n_test":
            assert value == round(value, 6)


def test_prediction_table_has_one_row_per_test_row():
    y = np.array([1.0, 0.0, 1.0])
    proba = np.array([0.7, 0.5, 0.2])
    table = prediction_table(y, proba, threshold=0.5)
    assert list(table.columns) == ["actual", "predicted", "proba"]
    assert table["actual"].tolist() == [1, 0, 1]
    assert table["predicted"].tolist() == [1, 1, 0]
    assert table["proba"].tolist() == [0.7, 0.5, 0.2]
    assert table["actual"].dtype.kind == "i" and table["predicted"].dtype.kind == "i"


def test_prediction_hash_is_equal_for_equal_predictions():
    proba = np.array([0.1, 0.2, 0.3])
    assert predictions_sha256(proba) == predictions_sha256(proba.copy())
    assert predictions_sha256(proba) == predictions_sha256([0.1, 0.2, 0.3])


def test_prediction_hash_changes_when_one_value_moves_by_the_smallest_step():
    proba = np.array([0.1, 0.2, 0.3])
    nudged = proba.copy()
    nudged[1] = np.nextafter(nudged[1], 1.0)
    assert predictions_sha256(nudged) != predictions_sha256(proba)
    assert predictions_sha256(proba[::-1]) != predictions_sha256(proba)  # order matters too


def test_roc_table_is_thinned_to_at_most_max_points():
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 2000)
    proba = np.clip(y * 0.3 + rng.uniform(size=2000) * 0.7, 0, 1)
    table = roc_table(y, proba, max_points=50)
    assert 2 <= len(table) <= 50
    assert (table.iloc[0]["fpr"], table.iloc[0]["tpr"]) == (0.0, 0.0)
    assert (table.iloc[-1]["fpr"], table.iloc[-1]["tpr"]) == (1.0, 1.0)
    assert table["fpr"].is_monotonic_increasing and table["tpr"].is_monotonic_increasing
    assert table["threshold"].between(0, 1).all()  # sklearn's first threshold is inf


def test_short_roc_curve_is_kept_whole():
    table = roc_table(np.array([0, 1, 0, 1]), np.array([0.1, 0.9, 0.2, 0.8]), max_points=200)
    assert table[["fpr", "tpr"]].values.tolist() == [[0.0, 0.0], [0.0, 0.5], [0.0, 1.0], [1.0, 1.0]]


def test_binary_scores_are_the_positive_class_column():
    X = np.array([[0.0], [1.0], [2.0], [3.0]])
    model = LogisticRegression().fit(X, [0, 0, 1, 1])
    proba = scores(model, X)
    assert task_of(model) == "binary"
    np.testing.assert_array_equal(proba, model.predict_proba(X)[:, 1])
    assert proba[0] < 0.5 < proba[-1]


def test_string_labels_go_in_and_come_out_of_a_multiclass_model():
    X = np.array([[0.0], [1.0], [2.0], [10.0], [11.0], [12.0], [20.0], [21.0], [22.0]])
    y = np.array(["Adelie"] * 3 + ["Chinstrap"] * 3 + ["Gentoo"] * 3, dtype=object)
    model = LogisticRegression(max_iter=1000).fit(X, y)
    out = scores(model, X)
    assert task_of(model) == "multiclass" and out.shape == (9, 3)
    assert classes_of(model) == ["Adelie", "Chinstrap", "Gentoo"]
    assert labels_from(out, classes_of(model), 0.5).tolist() == y.tolist()
    m = metrics_for("multiclass", y, out, 0.5, classes_of(model))
    assert m["accuracy"] == 1.0 and m["f1_macro"] == 1.0 and m["recall_Gentoo"] == 1.0
    assert m["log_loss"] > 0 and m["n_test"] == 9
    table = task_prediction_table("multiclass", y, out, 0.5, classes_of(model))
    assert table["predicted"].tolist() == y.tolist()


def test_a_wrong_multiclass_answer_lowers_accuracy_and_that_class_recall():
    y = np.array(["a", "b", "c", "c"], dtype=object)
    proba = np.array([[0.8, 0.1, 0.1], [0.1, 0.8, 0.1], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1]])
    m = metrics_for("multiclass", y, proba, 0.5, ["a", "b", "c"])
    assert m["accuracy"] == 0.75 and m["recall_c"] == 0.5 and m["precision_a"] == 0.5


def test_regression_metrics_and_plots(tmp_path):
    X = np.arange(40, dtype=float).reshape(-1, 1)
    y = 3 * X[:, 0] + 1 + np.sin(X[:, 0])
    model = Ridge().fit(X, y)
    assert task_of(model) == "regression" and classes_of(model) == []
    pred = scores(model, X)
    m = metrics_for("regression", y, pred, 0.5, [])
    assert 0 < m["rmse"] < 1 and 0 < m["mae"] <= m["rmse"] and m["r2"] > 0.99
    assert set(m) == {"rmse", "mae", "r2", "mape", "n_test"}
    with_zero = metrics_for("regression", np.array([0.0, 1.0, 2.0]), np.array([0.1, 1.0, 2.0]), 0.5, [])
    assert "mape" not in with_zero  # undefined where an actual value is 0
    table = task_prediction_table("regression", y, pred, 0.5, [])
    np.testing.assert_allclose(table["residual"], y - pred)
    written = save_task_plots("regression", table, y, pred, 0.5, [], tmp_path)
    assert [p.name for p in written] == ["predicted_vs_actual.png", "residuals.png"]
    assert (tmp_path / "predicted_vs_actual.csv").read_text().startswith("actual,predicted")


def test_binary_string_labels_count_the_second_class_as_positive():
    y = np.array(["no", "no", "yes", "yes"], dtype=object)
    m = metrics_for("binary", y, np.array([0.1, 0.2, 0.9, 0.8]), 0.5, ["no", "yes"])
    assert m["roc_auc"] == 1.0 and m["positive_rate"] == 0.5


def test_plot_images_are_written_as_pngs(tmp_path):
    y = np.array([0, 1, 0, 1, 1, 0])
    proba = np.array([0.2, 0.8, 0.4, 0.6, 0.3, 0.1])
    paths = save_plot_images(y, proba, 0.5, tmp_path / "plots")
    assert [p.name for p in paths] == ["roc.png", "confusion_matrix.png"]
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
