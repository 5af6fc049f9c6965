"""The model file: canonical bytes (equal models, equal files), and only trusted types load."""

from __future__ import annotations

import hashlib
import io
import json
import operator
import zipfile

import numpy as np
import pytest
import skops.io as sio
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import FunctionTransformer

from mlpipe.model.artifact import canonical_skops, dump_model, load_model_file
from mlpipe.pipeline.train import fit_model


def test_dump_returns_the_sha256_of_the_written_file(tmp_path, hgb):
    path = tmp_path / "model" / "model.skops"
    sha = dump_model(hgb, path)
    assert sha == hashlib.sha256(path.read_bytes()).hexdigest()


def test_raw_skops_bytes_differ_but_canonical_bytes_agree(small_cfg, params, xy):
    X, y = xy
    a = fit_model(small_cfg(), params.features, X, y, seed=3, task="binary")
    b = fit_model(small_cfg(), params.features, X, y, seed=3, task="binary")
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
    model = Pipeline([("neg", FunctionTransformer(operator.neg)), ("lr", LogisticRegression())]).fit(
        X, [0, 1] * 5
    )
    path = tmp_path / "model.skops"
    dump_model(model, path)
    with pytest.raises(ValueError) as info:
        load_model_file(path)
    message = str(info.value)
    assert "_operator.neg (callable)" in message and str(path) in message
    assert "train.trusted_types" in message and "\n" not in message
    assert load_model_file(path, ["_operator.neg"]).predict(X) is not None, "the project may name it"


def test_a_tree_model_loads_with_mlpipes_own_list_alone(tmp_path, hgb):
    path = tmp_path / "model.skops"
    dump_model(hgb, path)
    assert load_model_file(path).predict_proba is not None
