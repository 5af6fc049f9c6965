"""The skops allowlist is the project's: mlpipe's fixed list, skops' own defaults, classes of
scikit-learn/numpy/scipy, and what params.yaml's train.trusted_types names. A type outside them, or any
callable not named exactly, is refused by name at training and at loading; the model's manifest is never read
for it."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.linear_model import LogisticRegression

from mlpipe.config import FeaturesCfg, TrainCfg
from mlpipe.errors import UntrustedTypes
from mlpipe.model.artifact import derive_trusted_types, dump_model, load_model_file
from mlpipe.pipeline.train import fit_model


class ShrunkLogistic(ClassifierMixin, BaseEstimator):
    """A user's own classifier (outside scikit-learn): a logistic regression with a fixed penalty."""

    def __init__(self, strength: float = 1.0):
        self.strength = strength

    def fit(self, X, y):
        self.inner_ = LogisticRegression(C=1 / self.strength).fit(X, y)
        self.classes_ = self.inner_.classes_
        return self

    def predict_proba(self, X):
        return self.inner_.predict_proba(X)

    def predict(self, X):
        return self.inner_.predict(X)


OWN = f"{ShrunkLogistic.__module__}.ShrunkLogistic"
FEATURES = FeaturesCfg(categorical=["c"], numerical=["x"])


def _fitted(estimator: str):
    rng = np.random.default_rng(0)
    X = pd.DataFrame({"c": rng.choice(["a", "b"], 80).astype(object), "x": rng.normal(size=80)})
    y = pd.Series((X["x"] > 0).astype(int))
    return fit_model(TrainCfg(estimator=estimator, n_jobs=1), FEATURES, X, y, seed=3, task="binary"), X


def test_a_scikit_learn_model_needs_no_listing_and_records_only_its_own_types(tmp_path):
    model, _ = _fitted("hist_gradient_boosting")
    dump_model(model, tmp_path / "m.skops")
    types = derive_trusted_types(tmp_path / "m.skops", [], "train.estimator")
    assert all(t.startswith(("sklearn.", "numpy.", "functools.")) for t in types)
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in types
    assert load_model_file(tmp_path / "m.skops").predict_proba is not None


def test_a_type_outside_scikit_learn_is_refused_by_name_unless_the_project_names_it(tmp_path):
    model, X = _fitted(OWN)
    dump_model(model, tmp_path / "own.skops")
    with pytest.raises(UntrustedTypes, match=rf"refused {OWN} \(type\): not named by mlpipe or params.yaml"):
        derive_trusted_types(tmp_path / "own.skops", [], "train.estimator")
    assert OWN in derive_trusted_types(tmp_path / "own.skops", [OWN], "train.estimator")
    loaded = load_model_file(tmp_path / "own.skops", [OWN])
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    with pytest.raises(UntrustedTypes, match=OWN):  # loading asks the project again, never the manifest
        load_model_file(tmp_path / "own.skops")
