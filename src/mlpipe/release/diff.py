"""`mlpipe diff A B`: two models on the same rows. Metric deltas, the share of changed predictions
(classifiers) or the distribution of prediction deltas (regressors), and the rows that moved most.
The promotion gate uses `compare_models` as its differential test."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from mlpipe.errors import DataError

QUANTILES = (0.0, 0.01, 0.05, 0.25, 0.5, 0.75, 0.95, 0.99, 1.0)


def model_outputs(model, X: pd.DataFrame) -> tuple[np.ndarray, str]:
    """(scores, task): the model's outputs the way its task gives them (model.outputs.scores)."""
    from mlpipe.model.outputs import scores, task_of

    return scores(model, X), task_of(model)


def compare_models(
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    y: np.ndarray | None,
    threshold: float,
    frame: pd.DataFrame,
    top: int = 10,
    classes: list | None = None,
) -> dict:
    """The differential report for outputs `a` (reference) and `b` (candidate) on the same rows (pure).

    Classifiers: the share of rows whose answered class changed; binary scores are P(positive), multiclass
    ones a probability per class (the delta of a row is its largest probability change). Regressors: the
    distribution of the prediction deltas."""
    from mlpipe.model.outputs import labels_from

    classes = list(classes) if classes is not None else ([0, 1] if task == "binary" else [])
    delta = np.abs(b - a).max(axis=1) if a.ndim == 2 else b - a
    classifier = task != "regression"
    out: dict = {
        "rows": int(len(a)),
        "task": task,
        "classifier": classifier,
        "delta_quantiles": {str(q): float(np.quantile(delta, q)) for q in QUANTILES} if len(a) else {},
        "mean_abs_delta": float(np.mean(np.abs(delta))) if len(a) else 0.0,
        "identical": bool(np.array_equal(a, b)),
    }
    if classifier:
        changed = labels_from(a, classes, threshold) != labels_from(b, classes, threshold)
        out.update(
            threshold=threshold,
            changed_predictions=int(changed.sum()),
            changed_share=float(changed.mean()) if len(a) else 0.0,
        )
    if y is not None:
        from mlpipe.pipeline.evaluate import metrics_for

        ma, mb = metrics_for(task, y, a, threshold, classes), metrics_for(task, y, b, threshold, classes)
        out["metrics"] = {
            k: {"a": ma[k], "b": mb[k], "delta": round(mb[k] - ma[k], 6)} for k in ma if k in mb
        }
    order = np.argsort(-np.abs(delta), kind="stable")[:top]
    moved = frame.iloc[order].copy()
    moved.insert(0, "row", order)
    shown_a, shown_b = (a.max(axis=1), b.max(axis=1)) if a.ndim == 2 else (a, b)
    moved["a"], moved["b"], moved["delta"] = shown_a[order], shown_b[order], delta[order]
    out["top_changed"] = moved.astype(object).where(moved.notna(), None).to_dict(orient="records")
    return out


def load_registered_model(client, ref: str) -> tuple[object, str]:
    """(model, run id) for a run id / models:/ ref, through the safe loader (sha256, versions, allowlist)."""
    from mlpipe.registry.models import load_registered

    with tempfile.TemporaryDirectory(prefix="mlpipe-diff-") as tmp:
        loaded, run_id = load_registered(client, ref, dest=Path(tmp))
        return loaded.model, run_id


def diff(
    client, ref_a: str, ref_b: str, data: pd.DataFrame, target: str | None, threshold: float, top: int = 10
) -> dict:
    """Both models on `data`; `target` names the label column when it is there."""
    model_a, run_a = load_registered_model(client, ref_a)
    model_b, run_b = load_registered_model(client, ref_b)
    cols_a, cols_b = list(model_a.feature_names_in_), list(model_b.feature_names_in_)
    missing = sorted(set(cols_a + cols_b) - set(data.columns))
    if missing:
        raise DataError(
            f"diff: the data lacks model inputs {missing} (rule: both models need their features)"
        )
    from mlpipe.model.outputs import classes_of

    a, task_a = model_outputs(model_a, data[cols_a])
    b, task_b = model_outputs(model_b, data[cols_b])
    if task_a != task_b or classes_of(model_a) != classes_of(model_b):
        raise DataError(
            f"diff: A is a {task_a} model of classes {classes_of(model_a)}, B a {task_b} model of "
            f"classes {classes_of(model_b)} (rule: compare like with like)"
        )
    y = data[target].to_numpy() if target and target in data.columns else None
    shown = data[sorted(set(cols_a) | set(cols_b)) + ([target] if y is not None else [])]
    report = compare_models(
        a, b, task_a, y, threshold, shown.reset_index(drop=True), top, classes_of(model_a)
    )
    return {"a": {"ref": ref_a, "run_id": run_a}, "b": {"ref": ref_b, "run_id": run_b}, **report}


def render_diff(d: dict) -> str:
    lines = [
        (
            f"diff A={d['a']['ref']} (run {d['a']['run_id'][:12]})  "
            f"B={d['b']['ref']} (run {d['b']['run_id'][:12]})"
        ),
        f"rows: {d['rows']}; predictions identical: {d['identical']}",
    ]
    if d["classifier"]:
        lines.append(
            f"changed predictions (threshold {d['threshold']}): {d['changed_predictions']} "
            f"({d['changed_share']:.4%})"
        )
    lines.append(
        f"mean |B-A|: {d['mean_abs_delta']:.6g}; quantiles of B-A: "
        + ", ".join(f"q{float(q):g}={v:.4g}" for q, v in d["delta_quantiles"].items())
    )
    if "metrics" in d:
        lines.append("metric               A           B           B-A")
        lines += [
            f"{k:<20} {v['a']:<11.6g} {v['b']:<11.6g} {v['delta']:+.6g}" for k, v in d["metrics"].items()
        ]
    lines.append("rows that changed most:")
    lines += [
        f"  row {r['row']}: A={r['a']:.4g} B={r['b']:.4g} delta={r['delta']:+.4g}" for r in d["top_changed"]
    ]
    return "\n".join(lines)
