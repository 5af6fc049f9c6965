"""`mlpipe diff A B`: two models on the same rows. Metric deltas; with labels, what changed judged against
them (`flips`: rows A got right that B gets wrong and the reverse, per actual class, with the changes of
answer as a confusion of A's answers by B's; for values, the rows whose error grew or shrank beyond a
tolerance); the share of changed answers (classifiers) and the distribution of prediction deltas; the rows
that moved most. The promotion gate judges a challenger's regressions with `flips`."""

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


# A regressor's row "flips" when its absolute error changes by more than this share of A's mean absolute
# error on the rows (gate.row_error_tolerance overrides it in the gate).
ROW_ERROR_TOLERANCE = 0.5


def _share(count: int, rows: int) -> float:
    return round(count / rows, 6) if rows else 0.0


def label_flips(y: np.ndarray, label_a: np.ndarray, label_b: np.ndarray, classes: list) -> dict:
    """Rows A answered right that B answers wrong (negative flips) and the reverse (positive), overall and per
    actual class, and the changes of answer as counts of (A's answer, B's answer) (pure)."""
    y, label_a, label_b = (np.asarray(v, dtype=object) for v in (y, label_a, label_b))
    right_a, right_b = label_a == y, label_b == y
    negative, positive = right_a & ~right_b, ~right_a & right_b
    per_class = {}
    for label in classes:
        mine = y == label
        per_class[str(label)] = {
            "rows": int(mine.sum()),
            "negative": int((negative & mine).sum()),
            "positive": int((positive & mine).sum()),
        }
    moved = label_a != label_b
    pairs = pd.Series(list(zip(label_a[moved], label_b[moved], strict=True)), dtype=object).value_counts()
    changes = [{"a": str(k[0]), "b": str(k[1]), "rows": int(v)} for k, v in pairs.items()]
    return _flip_summary(len(y), int(negative.sum()), int(positive.sum())) | {
        "kind": "answers",
        "per_class": per_class,
        "changes": sorted(changes, key=lambda c: (-c["rows"], c["a"], c["b"])),
    }


def error_flips(y: np.ndarray, a: np.ndarray, b: np.ndarray, tolerance: float) -> dict:
    """Rows whose absolute error grew (negative flips) or shrank (positive) by more than `tolerance` x A's
    mean absolute error on these rows (pure)."""
    y = np.asarray(y, dtype=np.float64)
    err_a, err_b = np.abs(a - y), np.abs(b - y)
    margin = tolerance * float(err_a.mean()) if len(y) else 0.0
    grown = int((err_b > err_a + margin).sum())
    shrunk = int((err_b < err_a - margin).sum())
    return _flip_summary(len(y), grown, shrunk) | {"kind": "errors", "margin": round(margin, 6)}


def _flip_summary(rows: int, negative: int, positive: int) -> dict:
    return {
        "rows": rows,
        "negative": negative,
        "positive": positive,
        "negative_share": _share(negative, rows),
        "positive_share": _share(positive, rows),
        "net_negative_share": _share(negative - positive, rows),
    }


def flips(
    task: str,
    y: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    threshold: float,
    classes: list,
    tolerance: float = ROW_ERROR_TOLERANCE,
) -> dict:
    """What changed from A to B, judged against the labels `y`: label_flips for classes (answers at
    `threshold`), error_flips for values."""
    from mlpipe.model.outputs import labels_from

    if task == "regression":
        return error_flips(y, a, b, tolerance)
    return label_flips(y, labels_from(a, classes, threshold), labels_from(b, classes, threshold), classes)


def compare_models(
    a: np.ndarray,
    b: np.ndarray,
    task: str,
    y: np.ndarray | None,
    threshold: float,
    frame: pd.DataFrame,
    top: int = 10,
    classes: list | None = None,
    tolerance: float = ROW_ERROR_TOLERANCE,
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
        out["flips"] = flips(task, y, a, b, threshold, classes, tolerance)
    order = np.argsort(-np.abs(delta), kind="stable")[:top]
    moved = frame.iloc[order].copy()
    moved.insert(0, "row", order)
    shown_a, shown_b = (a.max(axis=1), b.max(axis=1)) if a.ndim == 2 else (a, b)
    moved["a"], moved["b"], moved["delta"] = shown_a[order], shown_b[order], delta[order]
    if classifier:  # the answers, beside the probabilities they come from
        moved["a_answer"] = labels_from(a, classes, threshold)[order]
        moved["b_answer"] = labels_from(b, classes, threshold)[order]
    out["top_changed"] = moved.astype(object).where(moved.notna(), None).to_dict(orient="records")
    return out


def load_registered_model(
    client, ref: str, project_trusted: list[str] | tuple[str, ...] = ()
) -> tuple[object, str]:
    """(model, run id) for a run id / models:/ ref, through the safe loader (sha256, versions, allowlist)."""
    from mlpipe.registry.models import load_registered

    with tempfile.TemporaryDirectory(prefix="mlpipe-diff-") as tmp:
        loaded, resolved = load_registered(client, ref, dest=Path(tmp), project_trusted=project_trusted)
        return loaded.model, resolved.run_id


def diff(
    client,
    ref_a: str,
    ref_b: str,
    data: pd.DataFrame,
    target: str | None,
    threshold: float,
    top: int = 10,
    project_trusted: list[str] | tuple[str, ...] = (),
) -> dict:
    """Both models on `data`; `target` names the label column when it is there; `project_trusted`: the
    project's train.trusted_types."""
    model_a, run_a = load_registered_model(client, ref_a, project_trusted)
    model_b, run_b = load_registered_model(client, ref_b, project_trusted)
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
    """The report as `mlpipe diff` prints it, in the terms of the models' task."""
    lines = [
        (
            f"diff A={d['a']['ref']} (run {d['a']['run_id'][:12]})  "
            f"B={d['b']['ref']} (run {d['b']['run_id'][:12]})"
        ),
        f"task: {d['task']}; rows: {d['rows']}; predictions identical: {d['identical']}",
    ]
    if d["classifier"]:
        at = f" (threshold {d['threshold']})" if d["task"] == "binary" else ""
        lines.append(f"changed answers{at}: {d['changed_predictions']} ({d['changed_share']:.4%})")
    what = "the largest |B-A| of a class probability" if d["task"] == "multiclass" else "B-A"
    lines.append(
        f"quantiles of {what}: "
        + ", ".join(f"q{float(q):g}={v:.4g}" for q, v in d["delta_quantiles"].items())
    )
    if "flips" in d:
        lines += render_flips(d["flips"])
    if "metrics" in d:
        lines.append("metric               A           B           B-A")
        lines += [
            f"{k:<20} {v['a']:<11.6g} {v['b']:<11.6g} {v['delta']:+.6g}" for k, v in d["metrics"].items()
        ]
    lines.append("rows that changed most:")
    lines += [f"  row {r['row']}: {moved_row(r, d['task'])}" for r in d["top_changed"]]
    return "\n".join(lines)


def moved_row(r: dict, task: str) -> str:
    """One of the rows that moved most, in the task's terms."""
    if task == "regression":
        return f"A={r['a']:.4g} B={r['b']:.4g} delta={r['delta']:+.4g}"
    if task == "multiclass":
        return (
            f"A {r['a_answer']} (p={r['a']:.3g}) -> B {r['b_answer']} (p={r['b']:.3g}); "
            f"largest class probability change {r['delta']:.3g}"
        )
    answers = f"A P={r['a']:.4g} ({r['a_answer']}) -> B P={r['b']:.4g} ({r['b_answer']})"
    return f"{answers}; delta={r['delta']:+.4g}"


def render_flips(f: dict) -> list[str]:
    """Negative and positive flips, per actual class and as changes of answer (classes), or rows whose error
    grew or shrank (values)."""
    if f["kind"] == "errors":
        return [
            f"rows whose |error| grew by more than {f['margin']:.4g}: {f['negative']} "
            f"({f['negative_share']:.2%}); shrank: {f['positive']} ({f['positive_share']:.2%})"
        ]
    lines = [
        f"A right, B wrong (negative flips): {f['negative']} ({f['negative_share']:.2%}); "
        f"A wrong, B right (positive flips): {f['positive']} ({f['positive_share']:.2%})",
        "  per actual class: "
        + "; ".join(
            f"{label}: -{c['negative']}/+{c['positive']} of {c['rows']}"
            for label, c in f["per_class"].items()
        ),
    ]
    if f["changes"]:
        lines.append(
            "  answers changed (A -> B: rows): "
            + ", ".join(f"{c['a']} -> {c['b']}: {c['rows']}" for c in f["changes"][:12])
        )
    return lines
