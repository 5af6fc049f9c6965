"""Estimator construction and the seeded fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from mlpipe.config import FeaturesCfg, Task, TrainCfg
from mlpipe.model.outputs import mark_positive_class
from mlpipe.pipeline.estimators import build_estimator, resolve_estimator


def ordinal_categories(features: FeaturesCfg) -> tuple:
    """The categorical columns as ordinal codes; unknown and missing categories become -1."""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1, dtype=np.float64
    )
    return ("cat", encoder, features.categorical)


def preprocessing(kind: str, features: FeaturesCfg) -> ColumnTransformer:
    """The column transformer an estimator kind needs (see estimators.EstimatorSpec)."""
    if kind == "native":
        # Unknown categories map to -1, which HGB's native categorical support treats as missing.
        return ColumnTransformer(
            [ordinal_categories(features)], remainder="passthrough", verbose_feature_names_out=False
        )
    if kind == "tree":
        return ColumnTransformer(
            [ordinal_categories(features), ("num", SimpleImputer(strategy="median"), features.numerical)],
            verbose_feature_names_out=False,
        )
    return ColumnTransformer(
        [
            ("cat", OneHotEncoder(handle_unknown="ignore", sparse_output=False), features.categorical),
            (
                "num",
                Pipeline([("impute", SimpleImputer(strategy="median")), ("scale", StandardScaler())]),
                features.numerical,
            ),
        ],
        verbose_feature_names_out=False,
    )


def build_pipeline(cfg: TrainCfg, features: FeaturesCfg, seed: int, task: Task) -> Pipeline:
    """Preprocessing + estimator as configured for the task; every random choice takes `seed`."""
    spec = resolve_estimator(cfg.estimator, task, cfg.hyperparams)
    est = build_estimator(spec, seed, cfg.n_jobs, len(features.categorical))
    return Pipeline([("preprocess", preprocessing(spec.kind, features)), ("model", est)])


def fit_model(
    cfg: TrainCfg,
    features: FeaturesCfg,
    X: pd.DataFrame,
    y: pd.Series,
    seed: int,
    task: Task,
    positive_class: str | int | None = None,
) -> Pipeline:
    """Fit the configured pipeline with native thread pools pinned to `cfg.n_jobs`; a binary model
    records `positive_class` (dataset.positive_class) as the label it answers the probability of."""
    model = build_pipeline(cfg, features, seed, task)
    with threadpool_limits(limits=cfg.n_jobs):
        model.fit(X, y)
    return mark_positive_class(model, positive_class) if task == "binary" else model
