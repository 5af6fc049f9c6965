"""Training: the same data, config and seed give the same model file byte for byte; every estimator fits."""

from __future__ import annotations

import numpy as np
import pytest

from mlpipe.model.artifact import dump_model, load_model_file
from mlpipe.pipeline.train import build_pipeline, fit_model


def test_same_seed_gives_byte_identical_model_files(small_cfg, tmp_path, params, xy):
    X, y = xy
    first = fit_model(small_cfg(), params.features, X, y, seed=7, task="binary")
    second = fit_model(small_cfg(), params.features, X, y, seed=7, task="binary")
    sha_a = dump_model(first, tmp_path / "a" / "model.skops")
    sha_b = dump_model(second, tmp_path / "b" / "model.skops")
    assert sha_a == sha_b
    assert (tmp_path / "a" / "model.skops").read_bytes() == (tmp_path / "b" / "model.skops").read_bytes()


def test_different_seed_gives_a_different_random_forest(small_cfg, tmp_path, params, xy):
    X, y = xy
    cfg = small_cfg("random_forest")
    a = fit_model(cfg, params.features, X, y, seed=1, task="binary")
    b = fit_model(cfg, params.features, X, y, seed=2, task="binary")
    assert dump_model(a, tmp_path / "a.skops") != dump_model(b, tmp_path / "b.skops")
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "random_forest", "logistic_regression"])
def test_each_estimator_fits_saves_loads_and_predicts(small_cfg, tmp_path, params, xy, estimator):
    X, y = xy
    model = fit_model(small_cfg(estimator), params.features, X, y, seed=params.seed, task="binary")
    proba = model.predict_proba(X)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert ((proba >= 0) & (proba <= 1)).all()
    # Better than chance on its own training data: it learned the planted signal.
    assert (model.predict(X) == y).mean() > 0.6
    path = tmp_path / "model.skops"
    dump_model(model, path)
    np.testing.assert_array_equal(load_model_file(path).predict_proba(X), proba)


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "random_forest", "logistic_regression"])
def test_unseen_and_missing_categories_still_get_a_prediction(small_cfg, params, xy, estimator):
    X, y = xy
    model = fit_model(small_cfg(estimator), params.features, X, y, seed=params.seed, task="binary")
    new = X.head(2).copy()
    new.loc[new.index[0], "carrier"] = "ZZ"  # a carrier never seen in training
    new.loc[new.index[1], "dest"] = None
    new.loc[new.index[1], "temp"] = np.nan
    proba = model.predict_proba(new)
    assert proba.shape == (2, 2) and np.isfinite(proba).all()


def test_pipeline_takes_the_seed_and_thread_count_from_config(small_cfg, params):
    cfg = small_cfg("random_forest").model_copy(update={"n_jobs": 2})
    model = build_pipeline(cfg, params.features, seed=123, task="binary")
    assert model.named_steps["model"].random_state == 123
    assert model.named_steps["model"].n_jobs == 2
    assert model.named_steps["model"].n_estimators == 10


def test_gradient_boosting_treats_the_categoricals_natively(params):
    model = build_pipeline(params.train, params.features, seed=5, task="binary")
    est = model.named_steps["model"]
    assert est.categorical_features == [0, 1, 2]
    assert est.random_state == 5
    assert est.max_iter == 200  # hyperparams from params.yaml reach the estimator
