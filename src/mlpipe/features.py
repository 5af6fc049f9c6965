"""Feature code shared by training and serving, so both see the same columns and types."""

from __future__ import annotations

import pandas as pd

from mlpipe.config import FeaturesCfg


def select_features(df: pd.DataFrame, features: FeaturesCfg) -> pd.DataFrame:
    """The model's input frame: configured columns only, in config order, categoricals as str, numbers as float64.

    Leakage columns can never get through: only `features.categorical + features.numerical` are kept,
    and the config refuses any of those that is listed under `features.leakage`.
    """
    missing = [c for c in features.columns if c not in df.columns]
    if missing:
        raise KeyError(f"features: columns {missing} missing from the data (rule: every configured feature is required)")
    out = pd.DataFrame(index=df.index)
    for col in features.categorical:
        out[col] = df[col].astype("object").where(df[col].notna(), None)
    for col in features.numerical:
        out[col] = pd.to_numeric(df[col], errors="raise").astype("float64")
    return out


def target_vector(df: pd.DataFrame, target: str) -> pd.Series:
    """The target as int64 labels."""
    return df[target].astype("int64")
