"""What a fitted model answers, the way its task does: one piece of code for evaluate, the gate, diff,
the infra probe, reproduce, monitoring and the service. `predict_proba` is called only where it exists.

- binary: the probability of the positive class (`classes_[1]`), a label from the threshold;
- multiclass: one probability per class (columns in `classes_` order), the most probable label;
- regression: the predicted value."""

from __future__ import annotations

import numpy as np
import pandas as pd


def task_of(model) -> str:
    """binary, multiclass or regression, read off the fitted model itself."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return "regression"
    return "binary" if len(classes) == 2 else "multiclass"


def classes_of(model) -> list:
    """The labels a classifier answers with, as JSON types (empty for a regressor)."""
    classes = getattr(model, "classes_", None)
    return [] if classes is None else np.asarray(classes).tolist()


def scores(model, X: pd.DataFrame) -> np.ndarray:
    """binary: P(positive) per row; multiclass: a rows x classes probability matrix; regression: values."""
    task = task_of(model)
    if task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64)
    proba = model.predict_proba(X)
    return proba[:, 1] if task == "binary" else proba


def labels_from(scores_: np.ndarray, classes: list, threshold: float) -> np.ndarray:
    """The answer each row gets from its scores (regression: the value itself)."""
    if not classes:
        return scores_
    if scores_.ndim == 1:
        return np.where(scores_ >= threshold, classes[1], classes[0])
    return np.asarray(classes, dtype=object)[np.argmax(scores_, axis=1)]


def summary_score(scores_: np.ndarray) -> np.ndarray:
    """One number per row for deltas and logs: P(positive), P(predicted class), or the value."""
    return scores_.max(axis=1) if scores_.ndim == 2 else scores_
