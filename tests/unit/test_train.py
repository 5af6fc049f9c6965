"""Training: the same data, config and seed give the same model file byte for byte, and only trusted files load."""

from __future__ import annotations

import hashlib
import io
import json
import operator
import sys
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlpipe.features import select_features, target_vector
from mlpipe.train import (
    MODEL_PACKAGES,
    TRUSTED_TYPES,
    build_manifest,
    build_pipeline,
    canonical_skops,
    dump_model,
    fit_model,
    load_model_file,
    package_versions,
)

SMALL = {
    "hist_gradient_boosting": {"max_iter": 10, "max_leaf_nodes": 8, "min_samples_leaf": 10},
    "random_forest": {"n_estimators": 10, "max_depth": 4},
    "logistic_regression": {"max_iter": 200},
}


@pytest.fixture(scope="module")
def xy(make_frame, params):
    df = make_frame(300, seed=1)
    return select_features(df, params.features), target_vector(df, params.dataset.target)


def _cfg(params, estimator: str = "hist_gradient_boosting"):
    return params.train.model_copy(update={"estimator": estimator, "hyperparams": SMALL[estimator]})


@pytest.fixture(scope="module")
def hgb(params, xy):
    X, y = xy
    return fit_model(_cfg(params), params.features, X, y, seed=params.seed)


def test_same_seed_gives_byte_identical_model_files(tmp_path, params, xy):
    X, y = xy
    first = fit_model(_cfg(params), params.features, X, y, seed=7)
    second = fit_model(_cfg(params), params.features, X, y, seed=7)
    sha_a = dump_model(first, tmp_path / "a" / "model.skops")
    sha_b = dump_model(second, tmp_path / "b" / "model.skops")
    assert sha_a == sha_b
    assert (tmp_path / "a" / "model.skops").read_bytes() == (tmp_path / "b" / "model.skops").read_bytes()


def test_dump_returns_the_sha256_of_the_written_file(tmp_path, hgb):
    path = tmp_path / "model" / "model.skops"
    sha = dump_model(hgb, path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()


def test_different_seed_gives_a_different_random_forest(tmp_path, params, xy):
    X, y = xy
    cfg = _cfg(params, "random_forest")
    a = fit_model(cfg, params.features, X, y, seed=1)
    b = fit_model(cfg, params.features, X, y, seed=2)
    assert dump_model(a, tmp_path / "a.skops") != dump_model(b, tmp_path / "b.skops")
    assert not np.array_equal(a.predict_proba(X), b.predict_proba(X))


def test_raw_skops_bytes_differ_but_canonical_bytes_agree(params, xy):
    X, y = xy
    a = fit_model(_cfg(params), params.features, X, y, seed=3)
    b = fit_model(_cfg(params), params.features, X, y, seed=3)
    raw_a, raw_b = sio.dumps(a), sio.dumps(b)
    assert raw_a != raw_b  # skops names objects after id(): why canonical_skops exists
    assert canonical_skops(raw_a) == canonical_skops(raw_b)


def test_canonical_form_is_idempotent(hgb):
    once = canonical_skops(sio.dumps(hgb))
    assert canonical_skops(once) == once


def test_canonical_archive_has_fixed_timestamps_and_renumbered_entries(hgb):
    archive = zipfile.ZipFile(io.BytesIO(canonical_skops(sio.dumps(hgb))))
    infos = archive.infolist()
    assert infos[0].filename == "schema.json"
    assert {info.date_time for info in infos} == {(1980, 1, 1, 0, 0, 0)}
    stems = [int(info.filename.partition(".")[0]) for info in infos[1:]]
    assert stems == sorted(stems)
    assert max(stems) < 10_000  # small document-order numbers, not memory addresses
    json.loads(archive.read("schema.json"))


def test_saved_model_loads_and_predicts_exactly_the_same(tmp_path, hgb, xy):
    X, _ = xy
    path = tmp_path / "model.skops"
    dump_model(hgb, path)
    loaded = load_model_file(path)
    np.testing.assert_array_equal(loaded.predict_proba(X), hgb.predict_proba(X))


def test_model_file_with_a_function_outside_the_allowlist_is_refused(tmp_path):
    X = np.arange(20, dtype=float).reshape(10, 2)
    model = Pipeline([("neg", FunctionTransformer(operator.neg)), ("lr", LogisticRegression())]).fit(X, [0, 1] * 5)
    path = tmp_path / "model.skops"
    dump_model(model, path)
    with pytest.raises(ValueError) as info:
        load_model_file(path)
    assert "_operator.neg" in str(info.value)
    assert "allowlist" in str(info.value)


def test_model_file_is_refused_when_its_types_are_not_trusted(tmp_path, hgb):
    path = tmp_path / "model.skops"
    dump_model(hgb, path)
    with pytest.raises(ValueError) as info:
        load_model_file(path, trusted=())
    message = str(info.value)
    assert str(path) in message
    assert "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor" in message
    assert "rule: skops trusted types" in message


@pytest.mark.parametrize("estimator", ["hist_gradient_boosting", "random_forest", "logistic_regression"])
def test_each_estimator_fits_saves_loads_and_predicts(tmp_path, params, xy, estimator):
    X, y = xy
    model = fit_model(_cfg(params, estimator), params.features, X, y, seed=params.seed)
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
def test_unseen_and_missing_categories_still_get_a_prediction(params, xy, estimator):
    X, y = xy
    model = fit_model(_cfg(params, estimator), params.features, X, y, seed=params.seed)
    new = X.head(2).copy()
    new.loc[new.index[0], "carrier"] = "ZZ"  # a carrier never seen in training
    new.loc[new.index[1], "dest"] = None
    new.loc[new.index[1], "temp"] = np.nan
    proba = model.predict_proba(new)
    assert proba.shape == (2, 2) and np.isfinite(proba).all()


def test_pipeline_takes_the_seed_and_thread_count_from_config(params):
    cfg = _cfg(params, "random_forest").model_copy(update={"n_jobs": 2})
    model = build_pipeline(cfg, params.features, seed=123)
    assert model.named_steps["model"].random_state == 123
    assert model.named_steps["model"].n_jobs == 2
    assert model.named_steps["model"].n_estimators == 10


def test_gradient_boosting_treats_the_categoricals_natively(params):
    model = build_pipeline(params.train, params.features, seed=5)
    est = model.named_steps["model"]
    assert est.categorical_features == [0, 1, 2]
    assert est.random_state == 5
    assert est.max_iter == 200  # hyperparams from params.yaml reach the estimator


def test_manifest_records_how_the_model_was_made(params):
    manifest = build_manifest(
        model_sha256="m" * 64, seed=42, params_hash="p" * 64, data_md5="d41d8.dir",
        train_sha256="t" * 64, features=params.features, target="late", estimator="random_forest",
    )
    assert manifest["model_file"] == "model.skops"
    assert manifest["format"] == "skops"
    assert manifest["model_sha256"] == "m" * 64
    assert manifest["seed"] == 42
    assert manifest["params_sha256"] == "p" * 64
    assert manifest["data_md5"] == "d41d8.dir"
    assert manifest["train_sha256"] == "t" * 64
    assert manifest["estimator"] == "random_forest"
    assert manifest["target"] == "late"
    assert manifest["features"] == {"categorical": params.features.categorical, "numerical": params.features.numerical}
    assert set(MODEL_PACKAGES) <= set(manifest["packages"])
    assert manifest["trusted_types"] == list(TRUSTED_TYPES)
    json.dumps(manifest)  # written as JSON as is


def test_package_versions_pin_python_to_major_minor_only():
    versions = package_versions()
    assert set(versions) == {*MODEL_PACKAGES, "python"}
    assert versions["python"] == f"{sys.version_info.major}.{sys.version_info.minor}"
    assert versions["scikit-learn"].split(".")[0] == "1"


def test_package_versions_of_a_package_not_installed_fail():
    import importlib.metadata

    with pytest.raises(importlib.metadata.PackageNotFoundError):
        package_versions(("surely-not-an-installed-package",))
