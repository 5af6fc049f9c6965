"""The positive class is the user's decision and travels with the model: a good/bad loan table whose 5%
'bad' rows are what the model must watch."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from mlpipe.config import FeaturesCfg, TrainCfg
from mlpipe.errors import ConfigError
from mlpipe.model.artifact import derive_trusted_types, dump_model, file_types, load_model_file
from mlpipe.model.outputs import classes_of, labels_from, scores
from mlpipe.pipeline.evaluate import metrics_for
from mlpipe.pipeline.train import fit_model

FEATURES = FeaturesCfg(categorical=["purpose"], numerical=["debt_ratio"])
CFG = TrainCfg(estimator="hist_gradient_boosting", n_jobs=1, hyperparams={"max_iter": 30})


@pytest.fixture(scope="module")
def loans() -> tuple[pd.DataFrame, pd.Series]:
    """1,000 loans, 5% bad: bad loans carry a high debt ratio, with noise."""
    rng = np.random.default_rng(0)
    n = 1000
    bad = rng.random(n) < 0.05
    X = pd.DataFrame(
        {
            "purpose": rng.choice(["car", "home", "study"], n),
            "debt_ratio": np.where(bad, rng.normal(0.8, 0.1, n), rng.normal(0.3, 0.15, n)),
        }
    )
    return X, pd.Series(np.where(bad, "bad", "good"), name="status")


def test_a_model_trained_to_watch_bad_loans_answers_p_bad_and_its_metrics_are_about_bad(loans):
    X, y = loans
    model = fit_model(CFG, FEATURES, X, y, seed=1, task="binary", positive_class="bad")
    assert list(model.classes_) == ["bad", "good"]  # scikit-learn's sorted order is unchanged
    assert classes_of(model) == ["good", "bad"]  # the positive class last
    p_bad = model.predict_proba(X)[:, 0]
    assert np.array_equal(scores(model, X), p_bad)
    answers = labels_from(scores(model, X), classes_of(model), 0.5)
    assert set(answers) <= {"good", "bad"} and (answers == "bad").sum() == (p_bad >= 0.5).sum()
    metrics = metrics_for("binary", y.to_numpy(), scores(model, X), 0.5, classes_of(model))
    is_bad = (y == "bad").to_numpy()
    assert metrics["positive_rate"] == pytest.approx(is_bad.mean())
    caught = ((p_bad >= 0.5) & is_bad).sum() / is_bad.sum()
    assert metrics["recall"] == pytest.approx(caught, abs=1e-6) and metrics["recall"] > 0.5


def test_by_default_the_sorted_last_label_stays_the_positive_class(loans):
    X, y = loans
    model = fit_model(CFG, FEATURES, X, y, seed=1, task="binary")
    assert classes_of(model) == ["bad", "good"]
    assert np.array_equal(scores(model, X), model.predict_proba(X)[:, 1])


def test_naming_the_sorted_last_label_keeps_the_model_bytes_of_a_model_that_names_none(loans, tmp_path):
    X, y = loans
    named = fit_model(CFG, FEATURES, X, y, seed=1, task="binary", positive_class="good")
    default = fit_model(CFG, FEATURES, X, y, seed=1, task="binary")
    assert dump_model(named, tmp_path / "a.skops") == dump_model(default, tmp_path / "b.skops")


def test_a_saved_model_keeps_its_positive_class_and_needs_no_more_trusted_types(loans, tmp_path):
    X, y = loans
    model = fit_model(CFG, FEATURES, X, y, seed=1, task="binary", positive_class="bad")
    path = tmp_path / "model.skops"
    dump_model(model, path)
    default_types = file_types(data=_default_bytes(X, y, tmp_path))
    assert file_types(path) == default_types  # a label is data: nothing new to trust
    assert derive_trusted_types(path, [], "train.estimator") == default_types
    loaded = load_model_file(path)
    assert classes_of(loaded) == ["good", "bad"]
    assert np.array_equal(scores(loaded, X), scores(model, X))


def _default_bytes(X, y, tmp_path) -> bytes:
    dump_model(fit_model(CFG, FEATURES, X, y, seed=1, task="binary"), tmp_path / "default.skops")
    return (tmp_path / "default.skops").read_bytes()


def test_numbers_and_their_text_name_one_label():
    X = pd.DataFrame({"purpose": ["car", "home"] * 20, "debt_ratio": np.linspace(0, 1, 40)})
    y = pd.Series([0, 1] * 20)
    model = fit_model(CFG, FEATURES, X, y, seed=1, task="binary", positive_class="0")
    assert classes_of(model) == [1, 0] and json.dumps(classes_of(model)) == "[1, 0]"
    assert np.array_equal(scores(model, X), model.predict_proba(X)[:, 0])


def test_a_positive_class_that_is_not_a_training_label_is_refused_naming_the_labels(loans):
    X, y = loans
    with pytest.raises(ConfigError) as info:
        fit_model(CFG, FEATURES, X, y, seed=1, task="binary", positive_class="defaulted")
    message = str(info.value)
    assert "\n" not in message and "dataset.positive_class: 'defaulted'" in message
    assert "['bad', 'good']" in message and "rule:" in message
