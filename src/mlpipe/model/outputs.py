"""What a fitted model answers, the way its task does: one piece of code for evaluate, the gate, diff,
the infra probe, reproduce, monitoring and the service. `predict_proba` is called only where it exists.

- binary: the probability of the positive class (`positive_class_` when training named one other than
  `classes_[1]`, else `classes_[1]`), a label from the threshold;
- multiclass: one probability per class (columns in `classes_` order), the most probable label;
- regression: the predicted value."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpipe.config import label_text
from mlpipe.errors import ConfigError

# The attribute a fitted binary model carries when its positive class is not `classes_[1]`: plain data (a
# str or int label), so skops stores it as such and loading trusts nothing more.
POSITIVE_ATTR = "positive_class_"


def task_of(model) -> str:
    """binary, multiclass or regression, read off the fitted model itself."""
    classes = getattr(model, "classes_", None)
    if classes is None:
        return "regression"
    return "binary" if len(classes) == 2 else "multiclass"


def classes_of(model) -> list:
    """The labels a classifier answers with, as JSON types (empty for a regressor); binary: [negative,
    positive], the positive class last."""
    classes = getattr(model, "classes_", None)
    labels = [] if classes is None else np.asarray(classes).tolist()
    positive = getattr(model, POSITIVE_ATTR, None)
    if len(labels) == 2 and positive in labels:
        return [next(c for c in labels if c != positive), positive]
    return labels


def mark_positive_class(model, wanted: str | int | None):
    """Record `wanted` (matched by its text: 1 and "1" are one label) as a fitted binary model's positive
    class and return the model. It is stored on the model only where it is not already `classes_[1]`, so a
    model whose positive class is the sorted-last label keeps the bytes it always had. ConfigError when
    `wanted` is not one of the model's labels."""
    if wanted is None:
        return model
    labels = np.asarray(model.classes_).tolist()
    found = [c for c in labels if label_text(c) == label_text(wanted)]
    if not found:
        raise ConfigError(
            f"dataset.positive_class: {wanted!r} is not a label of the training rows {labels} "
            "(rule: the positive class is one of the target's two labels)"
        )
    if found[0] != labels[1]:
        setattr(model, POSITIVE_ATTR, found[0])
    return model


def scores(model, X: pd.DataFrame) -> np.ndarray:
    """binary: P(positive) per row; multiclass: a rows x classes probability matrix; regression: values."""
    task = task_of(model)
    if task == "regression":
        return np.asarray(model.predict(X), dtype=np.float64)
    proba = model.predict_proba(X)
    if task == "multiclass":
        return proba
    column = np.asarray(model.classes_).tolist().index(classes_of(model)[1])
    return proba[:, column]


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
