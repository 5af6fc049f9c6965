"""What the service answers and accepts per task: classes and probabilities, or values; feedback labels
of the target's type; Prometheus by class or as a histogram of values."""

from __future__ import annotations

import numpy as np
from prometheus_client import generate_latest

from mlpipe.serving.feedback import feedback_rule
from mlpipe.serving.metrics import Metrics, value_buckets
from mlpipe.serving.predict import answer_body
from mlpipe.serving.prediction_log import answer_text


def test_each_task_answers_in_its_own_shape():
    binary = answer_body("binary", [0, 1], np.array([0.2, 0.9]), np.array([0, 1]))
    assert binary == {"predictions": [0, 1], "probabilities": [0.2, 0.9]}
    multi = answer_body("multiclass", ["a", "b"], np.array([[0.25, 0.75]]), np.array(["b"], dtype=object))
    assert multi == {"predictions": ["b"], "probabilities": [{"a": 0.25, "b": 0.75}]}
    assert answer_body("regression", [], np.array([1.5, -2.0]), np.array([1.5, -2.0])) == {
        "predictions": [1.5, -2.0]
    }


def test_feedback_labels_must_be_of_the_targets_type():
    assert feedback_rule("binary", [0, 1], [0, 1, 1]) is None
    assert "model's classes (0, 1)" in feedback_rule("binary", [0, 1], [2])
    assert feedback_rule("binary", [0, 1], [True]) is not None  # a bool is not the class 1
    assert feedback_rule("multiclass", ["Adelie", "Gentoo"], ["Gentoo"]) is None
    assert "Adelie, Gentoo" in feedback_rule("multiclass", ["Adelie", "Gentoo"], [1])
    assert feedback_rule("regression", [], [1, 2.5]) is None
    assert "finite numbers" in feedback_rule("regression", [], [float("nan")])
    assert "finite numbers" in feedback_rule("regression", [], ["3"])
    assert feedback_rule("regression", [], "1.0") == "labels must be a list"


def test_labels_and_answers_are_logged_as_text_that_reads_back_exactly():
    assert [answer_text(v) for v in (np.int64(1), 0, "Adelie", np.float64(0.1), True)] == [
        "1",
        "0",
        "Adelie",
        "0.1",
        "1",
    ]
    assert float(answer_text(np.float64(1 / 3))) == 1 / 3


class _Served:
    def __init__(self, task, profile):
        self.task, self.profile, self.info = task, profile, {}


def test_prometheus_counts_classes_or_keeps_a_histogram_of_values():
    m = Metrics()
    m.count_answers(_Served("multiclass", {}), np.array(["b", "a", "b"], dtype=object))
    text = generate_latest(m.registry).decode()
    assert 'mlpipe_predictions_total{cls="b"} 2.0' in text and 'cls="a"} 1.0' in text
    profile = {
        "target": "temp",
        "columns": {"temp": {"quantiles": {"0.05": 20.0, "0.5": 50.0, "0.95": 80.0}}},
    }
    assert value_buckets(profile, None) == (20.0, 50.0, 80.0, float("inf"))
    r = Metrics()
    r.count_answers(_Served("regression", profile), np.array([10.0, 55.0, 90.0]))
    text = generate_latest(r.registry).decode()
    assert (
        'mlpipe_predicted_value_bucket{le="20.0"} 1.0' in text and "mlpipe_predicted_value_count 3.0" in text
    )
