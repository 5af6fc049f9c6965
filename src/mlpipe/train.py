"""Estimator construction, seeded fit, and the model file with its manifest."""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import json
import platform
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import skops.io as sio
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from mlpipe.config import FeaturesCfg, TrainCfg

# Packages whose exact versions a model file needs to load and predict the same way.
MODEL_PACKAGES = ("scikit-learn", "numpy", "scipy", "pandas", "skops")

# The project's own allowlist of types a model file may contain beyond skops' defaults. A model
# file is never trusted to name its own safe types (see STACK.md on loading models).
TRUSTED_TYPES = (
    "sklearn.ensemble._hist_gradient_boosting.binning._BinMapper",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn._loss.link.LogitLink",
    "sklearn._loss.link.Interval",
    "sklearn._loss.loss.HalfBinomialLoss",
    "sklearn._loss._loss.CyHalfBinomialLoss",
    "sklearn.tree._tree.Tree",
    "numpy.dtype",
    # ColumnTransformer's fitted passthrough is FunctionTransformer(partial(check_array)); skops checks
    # the wrapped function separately, so a partial of anything not listed here is still refused.
    "functools.partial",
    "sklearn.utils.validation.check_array",
)
# Fixed zip timestamp (the earliest a zip can hold) so the file's bytes do not depend on the clock.
_ZIP_EPOCH = (1980, 1, 1, 0, 0, 0)


def build_pipeline(cfg: TrainCfg, features: FeaturesCfg, seed: int) -> Pipeline:
    """Preprocessing + estimator as configured; every random choice takes `seed`."""
    n_cat = len(features.categorical)
    if cfg.estimator == "hist_gradient_boosting":
        pre = ColumnTransformer(
            [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                    encoded_missing_value=-1, dtype=np.float64), features.categorical)],
            remainder="passthrough", verbose_feature_names_out=False,
        )
        # Unknown categories map to -1, which HGB's native categorical support treats as missing.
        est = HistGradientBoostingClassifier(categorical_features=list(range(n_cat)), random_state=seed, **cfg.hyperparams)
    elif cfg.estimator == "random_forest":
        pre = ColumnTransformer(
            [("cat", OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1,
                                    encoded_missing_value=-1, dtype=np.float64), features.categorical),
             ("num", SimpleImputer(strategy="median"), features.numerical)],
            verbose_feature_names_out=False,
        )
        est = RandomForestClassifier(random_state=seed, n_jobs=cfg.n_jobs, **cfg.hyperparams)
    else:
        pre = ColumnTransformer(
            [("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), features.categorical),
             ("num", Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]), features.numerical)],
            verbose_feature_names_out=False,
        )
        est = LogisticRegression(random_state=seed, **cfg.hyperparams)
    return Pipeline([("preprocess", pre), ("model", est)])


def fit_model(cfg: TrainCfg, features: FeaturesCfg, X: pd.DataFrame, y: pd.Series, seed: int) -> Pipeline:
    """Fit the configured pipeline with native thread pools pinned to `cfg.n_jobs`."""
    model = build_pipeline(cfg, features, seed)
    with threadpool_limits(limits=cfg.n_jobs):
        model.fit(X, y)
    return model


def dump_model(model: Pipeline, path: Path) -> str:
    """Write the model with skops (no pickle) and return the file's sha256."""
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = canonical_skops(sio.dumps(model))
    path.write_bytes(payload)
    return hashlib.sha256(payload).hexdigest()


def canonical_skops(payload: bytes) -> bytes:
    """Rewrite a skops archive so equal models give equal bytes.

    skops names objects and array files after `id()` (memory addresses) and stamps zip entries with
    the clock; both change between processes. Ids are renumbered in document order (references
    keep pointing at the same object) and timestamps fixed; `skops.io.load` reads the result as is.
    """
    zin = zipfile.ZipFile(io.BytesIO(payload))
    schema = json.loads(zin.read("schema.json"))
    ids: dict[int, int] = {}

    def new_id(old: int) -> int:
        return ids.setdefault(old, len(ids))

    def renumber(node):
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "__id__":
                    node[key] = new_id(value)
                elif key == "file" and isinstance(value, str):
                    stem, dot, ext = value.partition(".")
                    node[key] = f"{new_id(int(stem))}{dot}{ext}"
                else:
                    renumber(value)
        elif isinstance(node, list):
            for item in node:
                renumber(item)

    renumber(schema)
    files = {info.filename: zin.read(info) for info in zin.infolist() if info.filename != "schema.json"}
    renamed = {}
    for name, data in files.items():
        stem, dot, ext = name.partition(".")
        renamed[f"{ids[int(stem)]}{dot}{ext}"] = data
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as zout:
        zout.writestr(zipfile.ZipInfo("schema.json", _ZIP_EPOCH), json.dumps(schema, separators=(",", ":")))
        for name in sorted(renamed, key=lambda n: int(n.partition(".")[0])):
            zout.writestr(zipfile.ZipInfo(name, _ZIP_EPOCH), renamed[name])
    return out.getvalue()


def load_model_file(path: Path, trusted: tuple[str, ...] = TRUSTED_TYPES) -> Pipeline:
    """Load a skops model file, refusing any type outside the project's allowlist."""
    untrusted = sorted(set(sio.get_untrusted_types(file=path)) - set(trusted))
    if untrusted:
        raise ValueError(f"{path}: types {untrusted} not in the project's allowlist (rule: skops trusted types)")
    return sio.load(path, trusted=list(trusted))


def package_versions(names: tuple[str, ...] = MODEL_PACKAGES) -> dict[str, str]:
    """Exact installed versions of `names`, plus Python's major.minor.

    Python's patch level is left out: it does not change the model, and recording it would make the
    manifest (and so dvc.lock) differ between machines that build identical models.
    """
    out = {name: importlib.metadata.version(name) for name in names}
    out["python"] = ".".join(platform.python_version_tuple()[:2])
    return out


def build_manifest(*, model_sha256: str, seed: int, params_hash: str, data_md5: str | None,
                   train_sha256: str, features: FeaturesCfg, target: str, estimator: str) -> dict:
    """Everything needed to check a model file is the one trained from this config and data."""
    return {
        "model_file": "model.skops",
        "format": "skops",
        "model_sha256": model_sha256,
        "seed": seed,
        "params_sha256": params_hash,
        "data_md5": data_md5,
        "train_sha256": train_sha256,
        "estimator": estimator,
        "features": {"categorical": features.categorical, "numerical": features.numerical},
        "target": target,
        "packages": package_versions(),
        "trusted_types": list(TRUSTED_TYPES),
    }
