"""The manifest: how a model was made, with exact package versions."""

from __future__ import annotations

import json
import sys

import pytest

from mlpipe.model.artifact import TRUSTED_TYPES
from mlpipe.model.manifest import MODEL_PACKAGES, build_manifest, package_versions


def test_manifest_records_how_the_model_was_made(params):
    manifest = build_manifest(
        model_sha256="m" * 64,
        seed=42,
        params_hash="p" * 64,
        data_md5="d41d8.dir",
        train_sha256="t" * 64,
        features=params.features,
        target="late",
        estimator="random_forest",
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
    assert manifest["features"] == {
        "categorical": params.features.categorical,
        "numerical": params.features.numerical,
    }
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
