"""Feature code shared by training and serving, so both see the same columns and types."""

from __future__ import annotations

import pandas as pd

from mlpipe.config import FeaturesCfg, Task
from mlpipe.errors import MissingColumns


def select_features(df: pd.DataFrame, features: FeaturesCfg) -> pd.DataFrame:
    """The model's input frame: configured columns only, in config order, categoricals as str, numbers
    as float64.

    Leakage columns can never get through: only `features.categorical + features.numerical` are kept,
    and the config refuses any of those that is listed under `features.leakage`.
    """
    missing = [c for c in features.columns if c not in df.columns]
    if missing:
        raise MissingColumns(
            f"features: columns {missing} missing from the data (rule: every configured feature is required)"
        )
    out = {col: categorical_values(df[col]) for col in features.categorical}
    for col in features.numerical:
        out[col] = pd.to_numeric(df[col], errors="raise").astype("float64", copy=False)
    return pd.DataFrame(out, index=df.index, copy=False)


def categorical_values(s: pd.Series) -> pd.Series:
    """A categorical column as Python objects with None for missing. Copied only when it must change
    (another dtype, or NaN to replace): on 10M rows each needless copy of a string column is 80 MB."""
    s = s.astype("object", copy=False)
    missing = s.isna()
    return s.where(~missing, None) if missing.any() else s


def target_vector(df: pd.DataFrame, target: str, task: Task) -> pd.Series:
    """The target as the task takes it: float64 values (regression); int64 labels when the labels are
    numbers, else text labels (classification: the model keeps them, string labels in and out)."""
    s = df[target]
    if task == "regression":
        return s.astype("float64")
    if pd.api.types.is_numeric_dtype(s):
        return s.astype("int64")
    return s.astype(str)
