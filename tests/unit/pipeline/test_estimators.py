"""Any scikit-learn estimator: short names per task, dotted paths, hyperparams checked against the
signature, defaults that train out of the box, preprocessing by estimator kind."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from mlpipe.config import FeaturesCfg, TrainCfg
from mlpipe.errors import ConfigError
from mlpipe.model.outputs import scores, task_of
from mlpipe.pipeline.estimators import SHORT_NAMES, resolve_estimator
from mlpipe.pipeline.train import build_pipeline, fit_model

FEATURES = FeaturesCfg(categorical=["colour"], numerical=["x", "z"])


def _frame(n: int = 120, seed: int = 0) -> tuple[pd.DataFrame, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = pd.DataFrame(
        {
            "colour": rng.choice(["red", "green", "blue", None], n).astype(object),
            "x": rng.normal(size=n),
            "z": np.where(rng.random(n) < 0.1, np.nan, rng.normal(size=n)),
        }
    )
    return X, X["x"].to_numpy() * 2 + (X["colour"] == "red") * 1.5


def _labels(value: np.ndarray, task: str) -> np.ndarray:
    if task == "regression":
        return value
    if task == "binary":
        return np.where(value > np.median(value), "yes", "no").astype(object)
    return np.array(["low", "mid", "high"], dtype=object)[
        np.digitize(value, np.quantile(value, [1 / 3, 2 / 3]))
    ]


@pytest.mark.parametrize("task", ["binary", "multiclass", "regression"])
@pytest.mark.parametrize("name", sorted(SHORT_NAMES))
def test_every_short_name_trains_out_of_the_box_for_each_task_it_has(name, task):
    classifier, regressor = SHORT_NAMES[name]
    if (regressor if task == "regression" else classifier) is None:
        with pytest.raises(ConfigError, match=f"has no {task} form"):
            resolve_estimator(name, task, {})
        return
    X, value = _frame()
    y = _labels(value, task)
    model = fit_model(TrainCfg(estimator=name, n_jobs=1), FEATURES, X, pd.Series(y), seed=7, task=task)
    assert task_of(model) == task
    out = scores(model, X)
    assert len(out) == len(X) and np.isfinite(out).all()
    if task != "regression":
        assert set(model.classes_) == set(y)


def test_a_dotted_path_names_any_estimator_and_its_hyperparams_are_passed():
    spec = resolve_estimator("sklearn.ensemble.ExtraTreesRegressor", "regression", {"max_depth": 3})
    assert spec.kind == "tree" and spec.hyperparams["max_depth"] == 3
    model = build_pipeline(
        TrainCfg(estimator="sklearn.linear_model.Ridge", n_jobs=1, hyperparams={"alpha": 2.0}),
        FEATURES,
        seed=1,
        task="regression",
    )
    assert model.named_steps["model"].alpha == 2.0
    # a linear estimator gets one-hot categories and scaled numbers
    assert [name for name, *_ in model.named_steps["preprocess"].transformers] == ["cat", "num"]
    assert "scale" in model.named_steps["preprocess"].transformers[1][1].named_steps


def test_an_unknown_hyperparameter_is_named_with_what_the_estimator_takes():
    with pytest.raises(
        ConfigError, match=r"\['learning_rate'\] are not parameters of .*RandomForestClassifier"
    ):
        resolve_estimator("random_forest", "binary", {"learning_rate": 0.1})


def test_seed_and_threads_come_from_params_never_from_hyperparams():
    with pytest.raises(ConfigError, match=r"\['random_state'\] are set by mlpipe"):
        resolve_estimator("random_forest", "binary", {"random_state": 3})
    model = build_pipeline(TrainCfg(estimator="random_forest", n_jobs=1), FEATURES, seed=11, task="binary")
    assert model.named_steps["model"].random_state == 11 and model.named_steps["model"].n_jobs == 1


@pytest.mark.parametrize(
    ("name", "task", "rule"),
    [
        ("sklearn.linear_model.Ridge", "multiclass", "is not a classifier"),
        ("sklearn.linear_model.LogisticRegression", "regression", "is not a regressor"),
        ("sklearn.svm.SVC", "binary", "gives no predict_proba"),
        ("sklearn.nope.Model", "binary", "cannot be imported"),
        ("xgboost", "binary", "unknown"),
        ("sklearn.metrics.accuracy_score", "binary", "not an estimator class"),
    ],
)
def test_an_estimator_that_cannot_serve_the_task_is_refused_in_one_line(name, task, rule):
    with pytest.raises(ConfigError, match=rule) as info:
        resolve_estimator(name, task, {})
    assert "\n" not in str(info.value)


def test_svc_with_probabilities_is_accepted():
    assert resolve_estimator("sklearn.svm.SVC", "binary", {"probability": True}).classifier
