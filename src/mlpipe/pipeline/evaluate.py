"""Test metrics, prediction tables and plots of a fitted classifier."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn import metrics as skm


def positive_proba(model, X: pd.DataFrame) -> np.ndarray:
    """Probability of the positive class for each row."""
    return model.predict_proba(X)[:, 1]


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
    return {k: (round(float(v), 6) if k != "n_test" else v) for k, v in out.items()}


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
    paths.append(out_dir / "roc.png")
    fig.savefig(paths[-1], dpi=80, metadata={"Software": None})
    plt.close(fig)
    fig, ax = plt.subplots(figsize=(5, 5))
    skm.ConfusionMatrixDisplay.from_predictions(y, (proba >= threshold).astype(int), ax=ax, colorbar=False)
    ax.set_title(f"Confusion matrix (threshold {threshold})")
    paths.append(out_dir / "confusion_matrix.png")
    fig.savefig(paths[-1], dpi=80, metadata={"Software": None})
    plt.close(fig)
    return paths
