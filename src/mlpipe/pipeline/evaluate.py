"""Test metrics, prediction tables and plots of a fitted model, per task (binary, multiclass, regression)."""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def metrics_for(task: str, y: np.ndarray, out: np.ndarray, threshold: float, classes: list) -> dict:
    """The task's test metrics of outputs `out` (model.outputs.scores) against labels `y`."""
    if task == "regression":
        return regression_metrics(y, out)
    if task == "multiclass":
        return multiclass_metrics(y, out, classes)
    return compute_metrics(positive_labels(y, classes), out, threshold)


BASELINE = "baseline."  # metrics.json keys of the trivial model's metrics: baseline.<metric>
LABEL_FACTS = ("n_test", "positive_rate")  # facts of the test rows, not of a model: never a baseline


def trivial_outputs(task: str, y_train: np.ndarray, rows: int, classes: list) -> np.ndarray:
    """The trivial model's outputs for `rows` rows (pure): the train split's mean (regression), its positive
    rate (binary: P(positive) as `positive_labels` reads it), or its class shares in `classes` order."""
    if task == "regression":
        return np.full(rows, float(np.mean(np.asarray(y_train, dtype=np.float64))))
    if task == "binary":
        return np.full(rows, float(np.mean(positive_labels(y_train, classes))))
    y_train = np.asarray(y_train, dtype=object)
    shares = np.array([np.mean(y_train == label) for label in classes], dtype=np.float64)
    return np.tile(shares, (rows, 1))


def baseline_metrics(
    task: str, y_train: np.ndarray, y_test: np.ndarray, threshold: float, classes: list
) -> dict[str, float]:
    """The trivial model's test metrics as `baseline.<metric>` (pure): what a model must beat to be worth
    having (the gate's baseline check, the run summary's "vs baseline")."""
    out = trivial_outputs(task, y_train, len(y_test), classes)
    found = metrics_for(task, y_test, out, threshold, classes)
    return {f"{BASELINE}{k}": v for k, v in found.items() if k not in LABEL_FACTS}


def positive_labels(y: np.ndarray, classes: list) -> np.ndarray:
    """Binary labels as 0/1 with classes[1] as the positive class (classes as `classes_of` gives them:
    the positive class last; 0/1 labels with 1 positive stay as they are)."""
    if len(classes) == 2 and list(classes) != [0, 1]:
        return (np.asarray(y) == classes[1]).astype(int)
    return np.asarray(y).astype(int)


def _rounded(out: dict) -> dict:
    return {k: (round(float(v), 6) if k != "n_test" else v) for k, v in out.items()}


def metric_key(label) -> str:
    """A class label as part of a metric name (MLflow takes letters, digits, _ - . / and spaces)."""
    return "".join(c if c.isalnum() or c in "_-." else "_" for c in str(label))


def multiclass_metrics(y: np.ndarray, proba: np.ndarray, classes: list) -> dict[str, float]:
    """Accuracy, balanced accuracy, macro/weighted F1, log loss and per-class precision/recall."""
    labels = np.asarray(classes, dtype=object)
    y = np.asarray(y, dtype=object)
    pred = labels[np.argmax(proba, axis=1)]
    with warnings.catch_warnings():  # a class the rows lack is a fact of the rows, not a warning to print
        warnings.filterwarnings("ignore", message="y_pred contains classes not in y_true")
        balanced = skm.balanced_accuracy_score(y, pred)
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": balanced,
        "f1_macro": skm.f1_score(y, pred, average="macro", labels=labels, zero_division=0),
        "f1_weighted": skm.f1_score(y, pred, average="weighted", labels=labels, zero_division=0),
        "log_loss": skm.log_loss(y, proba, labels=labels),
    }
    precision = skm.precision_score(y, pred, average=None, labels=labels, zero_division=0)
    recall = skm.recall_score(y, pred, average=None, labels=labels, zero_division=0)
    for label, p, r in zip(classes, precision, recall, strict=True):
        out[f"precision_{metric_key(label)}"] = p
        out[f"recall_{metric_key(label)}"] = r
    out["n_test"] = int(len(y))
    return _rounded(out)


def regression_metrics(y: np.ndarray, pred: np.ndarray) -> dict[str, float]:
    """RMSE, MAE, R² and (when no actual value is 0) MAPE."""
    y = np.asarray(y, dtype=np.float64)
    out = {
        "rmse": float(np.sqrt(skm.mean_squared_error(y, pred))),
        "mae": skm.mean_absolute_error(y, pred),
        "r2": skm.r2_score(y, pred) if len(y) > 1 else float("nan"),
    }
    if len(y) and not np.any(y == 0):
        out["mape"] = skm.mean_absolute_percentage_error(y, pred)
    out["n_test"] = int(len(y))
    return _rounded(out)


def compute_metrics(y: np.ndarray, proba: np.ndarray, threshold: float) -> dict[str, float]:
    """Threshold and ranking metrics of binary predictions, rounded so metrics.json diffs stay readable."""
    pred = (proba >= threshold).astype(int)
    both_classes = len(np.unique(y)) == 2
    out = {
        "roc_auc": skm.roc_auc_score(y, proba) if both_classes else float("nan"),
        "average_precision": skm.average_precision_score(y, proba) if both_classes else float("nan"),
        "log_loss": skm.log_loss(y, proba, labels=[0, 1]),
        "brier": skm.brier_score_loss(y, proba),
        "accuracy": skm.accuracy_score(y, pred),
        "precision": skm.precision_score(y, pred, zero_division=0),
        "recall": skm.recall_score(y, pred, zero_division=0),
        "f1": skm.f1_score(y, pred, zero_division=0),
        "positive_rate": float(np.mean(y)),
        "predicted_positive_rate": float(np.mean(pred)),
        "n_test": int(len(y)),
    }
    return _rounded(out)


def task_prediction_table(task: str, y: np.ndarray, out: np.ndarray, threshold: float, classes: list):
    """One row per test row: actual and predicted (plus the probability, or the residual)."""
    if task == "binary" and list(classes) == [0, 1]:
        return prediction_table(y, out, threshold)
    from mlpipe.model.outputs import labels_from, summary_score

    predicted = labels_from(out, classes, threshold)
    if task == "regression":
        return pd.DataFrame({"actual": y.astype(float), "predicted": predicted, "residual": y - predicted})
    return pd.DataFrame(
        {"actual": y.astype(str), "predicted": predicted.astype(str), "proba": summary_score(out)}
    )


def prediction_table(y: np.ndarray, proba: np.ndarray, threshold: float) -> pd.DataFrame:
    """One row per test row: actual, predicted label, probability (also the DVC confusion-plot data)."""
    return pd.DataFrame(
        {"actual": y.astype(int), "predicted": (proba >= threshold).astype(int), "proba": proba}
    )


def predictions_sha256(proba: np.ndarray) -> str:
    """Hash of the exact prediction values: equal hashes mean bit-identical predictions."""
    return hashlib.sha256(np.ascontiguousarray(proba, dtype=np.float64).tobytes()).hexdigest()


def roc_table(y: np.ndarray, proba: np.ndarray, max_points: int = 200) -> pd.DataFrame:
    """ROC curve points, thinned to at most `max_points` so the plot file stays small."""
    fpr, tpr, thr = skm.roc_curve(y, proba)
    keep = np.unique(np.linspace(0, len(fpr) - 1, min(max_points, len(fpr))).round().astype(int))
    return pd.DataFrame(
        {"fpr": fpr[keep].round(6), "tpr": tpr[keep].round(6), "threshold": np.clip(thr[keep], 0, 1).round(6)}
    )


def save_plot_images(y: np.ndarray, proba: np.ndarray, threshold: float, out_dir: Path) -> list[Path]:
    """ROC curve and confusion matrix as PNGs for the MLflow run page."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    fig, ax = plt.subplots(figsize=(5, 5))
    skm.RocCurveDisplay.from_predictions(y, proba, ax=ax)
    ax.set_title("ROC on the test split")
    paths.append(_save(fig, out_dir / "roc.png"))
    fig, ax = plt.subplots(figsize=(5, 5))
    skm.ConfusionMatrixDisplay.from_predictions(y, (proba >= threshold).astype(int), ax=ax, colorbar=False)
    ax.set_title(f"Confusion matrix (threshold {threshold})")
    paths.append(_save(fig, out_dir / "confusion_matrix.png"))
    return paths


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()  # axis labels and long class names inside the image
    fig.savefig(path, dpi=80, metadata={"Software": None})
    plt.close(fig)
    return path


def save_task_plots(
    task: str, table: pd.DataFrame, y, out, threshold: float, classes: list, out_dir: Path
) -> list[Path]:
    """The task's DVC plot data (CSV) and PNGs: ROC + confusion (binary), confusion (multiclass),
    predicted-vs-actual + residuals (regression)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    if task == "binary":
        table[["actual", "predicted"]].to_csv(out_dir / "confusion.csv", index=False)
        y01 = positive_labels(y, classes)
        roc_table(y01, out).to_csv(out_dir / "roc.csv", index=False)
        return save_plot_images(y01, out, threshold, out_dir)
    if task == "multiclass":
        table[["actual", "predicted"]].to_csv(out_dir / "confusion.csv", index=False)
        fig, ax = plt.subplots(figsize=(6, 6))
        skm.ConfusionMatrixDisplay.from_predictions(
            table["actual"], table["predicted"], ax=ax, colorbar=False
        )
        ax.set_title("Confusion matrix on the test split")
        return [_save(fig, out_dir / "confusion_matrix.png")]
    thinned = table.iloc[np.unique(np.linspace(0, len(table) - 1, min(2000, len(table))).astype(int))]
    thinned[["actual", "predicted"]].round(6).to_csv(out_dir / "predicted_vs_actual.csv", index=False)
    thinned[["predicted", "residual"]].round(6).to_csv(out_dir / "residuals.csv", index=False)
    fig, ax = plt.subplots(figsize=(5, 5))
    skm.PredictionErrorDisplay.from_predictions(
        table["actual"], table["predicted"], kind="actual_vs_predicted", ax=ax, random_state=0
    )
    ax.set_title("Predicted vs actual on the test split")
    paths = [_save(fig, out_dir / "predicted_vs_actual.png")]
    fig, ax = plt.subplots(figsize=(5, 5))
    skm.PredictionErrorDisplay.from_predictions(
        table["actual"], table["predicted"], kind="residual_vs_predicted", ax=ax, random_state=0
    )
    ax.set_title("Residuals on the test split")
    paths.append(_save(fig, out_dir / "residuals.png"))
    return paths
