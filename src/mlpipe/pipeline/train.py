"""Estimator construction and the seeded fit."""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler
from threadpoolctl import threadpool_limits

from mlpipe.config import FeaturesCfg, TrainCfg


def ordinal_categories(features: FeaturesCfg) -> tuple:
    """The categorical columns as ordinal codes; unknown and missing categories become -1."""
    encoder = OrdinalEncoder(
        handle_unknown="use_encoded_value", unknown_value=-1, encoded_missing_value=-1, dtype=np.float64
    )
    return ("cat", encoder, features.categorical)


def build_pipeline(cfg: TrainCfg, features: FeaturesCfg, seed: int) -> Pipeline:
    """Preprocessing + estimator as configured; every random choice takes `seed`."""
    n_cat = len(features.categorical)
    if cfg.estimator == "hist_gradient_boosting":
        pre = ColumnTransformer(
            [ordinal_categories(features)],
            remainder="passthrough",
            verbose_feature_names_out=False,
        )
        # Unknown categories map to -1, which HGB's native categorical support treats as missing.
        est = HistGradientBoostingClassifier(
            categorical_features=list(range(n_cat)), random_state=seed, **cfg.hyperparams
        )
    elif cfg.estimator == "random_forest":
        pre = ColumnTransformer(
            [
                ordinal_categories(features),
                ("num", SimpleImputer(strategy="median"), features.numerical),
            ],
            verbose_feature_names_out=False,
        )
        est = RandomForestClassifier(random_state=seed, n_jobs=cfg.n_jobs, **cfg.hyperparams)
    else:
        pre = ColumnTransformer(
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
        est = LogisticRegression(random_state=seed, **cfg.hyperparams)
    return Pipeline([("preprocess", pre), ("model", est)])


def fit_model(cfg: TrainCfg, features: FeaturesCfg, X: pd.DataFrame, y: pd.Series, seed: int) -> Pipeline:
    """Fit the configured pipeline with native thread pools pinned to `cfg.n_jobs`."""
    model = build_pipeline(cfg, features, seed)
    with threadpool_limits(limits=cfg.n_jobs):
        model.fit(X, y)
    return model
