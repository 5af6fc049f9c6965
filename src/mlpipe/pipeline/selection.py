"""Choosing a model on evidence: the validation part of the train split, one candidate's fit and score,
the winner (shared by `mlpipe sweep` and `train.estimator: auto`); and auto itself, which compares a small
seeded set of candidates that way and names the one the train stage then trains on the whole train split.

The test split is never looked at here: it stays for `evaluate` and the gate.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from threadpoolctl import threadpool_limits

from mlpipe.config import LOWER_IS_BETTER, FeaturesCfg, Params, Task, TrainCfg
from mlpipe.errors import SweepRefused
from mlpipe.model.outputs import classes_of, scores
from mlpipe.pipeline.estimators import auto_candidates, resolve_estimator
from mlpipe.pipeline.evaluate import metrics_for
from mlpipe.pipeline.features import select_features, target_vector
from mlpipe.pipeline.split import split_by_time, split_random
from mlpipe.pipeline.train import fit_model


def carve_validation(
    train: pd.DataFrame, params: Params, fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, validation) parts of the train split, cut the way the split stage cuts train from test:
    by time for time-ordered data (the validation rows are the newest, never shuffled across the
    cut), else a seeded draw (Params.seed_for("validation"))."""
    if params.split.method == "time":
        fit, valid, _ = split_by_time(train, params.dataset.time_column, fraction)
    else:
        fit, valid = split_random(train, fraction, params.seed_for("validation"))
    classes_needed = 2 if params.task != "regression" else 1
    if fit.empty or valid.empty or valid[params.dataset.target].nunique() < classes_needed:
        raise SweepRefused(
            f"train split: validation part has {len(valid)} rows "
            f"({valid[params.dataset.target].nunique()} classes), "
            f"fit part {len(fit)} (rule: both parts non-empty, both classes in validation; "
            "sweep.validation_fraction sizes it)"
        )
    return fit, valid


def training_frames(
    train: pd.DataFrame, params: Params, fraction: float
) -> dict[str, pd.DataFrame | pd.Series]:
    """Model inputs of the fit and validation parts: X_fit, y_fit, X_val, y_val."""
    fit, valid = carve_validation(train, params, fraction)
    target = params.dataset.target
    return {
        "X_fit": select_features(fit, params.features),
        "y_fit": target_vector(fit, target, params.task),
        "X_val": select_features(valid, params.features),
        "y_val": target_vector(valid, target, params.task),
    }


def score_candidate(
    train: TrainCfg,
    features: FeaturesCfg,
    X_fit: pd.DataFrame,
    y_fit: pd.Series,
    X_val: pd.DataFrame,
    y_val: pd.Series,
    seed: int,
    threshold: float,
    task: Task,
    positive_class: str | int | None = None,
) -> dict[str, Any]:
    """Fit one candidate as the train stage does and score it on the validation part: the task's metrics
    (binary: of dataset.positive_class) and fit seconds."""
    t0 = time.perf_counter()
    model = fit_model(train, features, X_fit, y_fit, seed, task, positive_class)
    fit_s = time.perf_counter() - t0
    with threadpool_limits(limits=train.n_jobs):  # scoring too: a candidate uses the threads it is given
        out = scores(model, X_val)
    metrics = metrics_for(task, y_val.to_numpy(), out, threshold, classes_of(model))
    return {"metrics": metrics, "fit_s": round(fit_s, 3)}


def pick_winner(metric_values: list[float], metric: str) -> int:
    """Index of the best value (lower is better for losses); ties go to the earlier candidate; NaN never
    wins."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    ranked = [(sign * v, i) for i, v in enumerate(metric_values) if v is not None and not math.isnan(v)]
    if not ranked:
        raise SweepRefused(
            f"validation: no candidate has a {metric} value (rule: at least one candidate must score)"
        )
    return min(ranked)[1]


# ---- train.estimator: auto ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Selection:
    """What auto decided. `record` is deterministic (the same data and config give the same bytes): it is
    written beside the model. `fit_seconds` differ from run to run, so they are kept apart from it."""

    record: dict[str, Any]
    fit_seconds: dict[str, float]

    @property
    def winner(self) -> str:
        return self.record["winner"]


def candidate_cfg(train: TrainCfg, name: str) -> TrainCfg:
    """The train section for candidate `name`: its class's defaults, threads as configured."""
    return train.model_copy(update={"estimator": name, "hyperparams": {}})


def chosen_cfg(train: TrainCfg, selection: Selection | None) -> TrainCfg:
    """The train section the model is fitted with: as configured, or auto's winner."""
    return train if selection is None else candidate_cfg(train, selection.winner)


def choose_estimator(params: Params, train: pd.DataFrame, seed: int) -> Selection:
    """train.estimator auto: each candidate (estimators.auto_candidates) fitted with `seed` on the fit part
    of the train split and scored on its validation part on params.sweep_metric, as `mlpipe sweep` scores;
    the best wins, a tie going to the earlier (simpler) one."""
    frames = training_frames(train, params, params.validation_fraction)
    names = auto_candidates(params.task)
    scored = [
        score_candidate(
            candidate_cfg(params.train, name),
            params.features,
            frames["X_fit"],
            frames["y_fit"],
            frames["X_val"],
            frames["y_val"],
            seed,
            params.evaluate.threshold,
            params.task,
            params.dataset.positive_class,
        )
        for name in names
    ]
    metric = params.sweep_metric
    values = [s["metrics"].get(metric) for s in scored]
    validation = {
        "method": params.split.method,
        "fraction": params.validation_fraction,
        "fit_rows": len(frames["X_fit"]),
        "validation_rows": len(frames["X_val"]),
        **({"seed": params.seed_for("validation")} if params.split.method != "time" else {}),
    }
    record = selection_record(names, values, metric, params.task, seed, validation)
    return Selection(record, {n: s["fit_s"] for n, s in zip(names, scored, strict=True)})


def selection_record(
    names: tuple[str, ...] | list[str],
    values: list[float | None],
    metric: str,
    task: str,
    seed: int,
    validation: dict[str, Any],
) -> dict[str, Any]:
    """auto's decision as data (pure): every candidate with its class, defaults and validation score, the
    winner and why."""
    best = pick_winner(values, metric)
    candidates = []
    for name, value in zip(names, values, strict=True):
        spec = resolve_estimator(name, task, {})
        score = None if value is None or math.isnan(value) else float(value)
        candidates.append(
            {"name": name, "estimator": spec.path, "hyperparams": spec.hyperparams, "score": score}
        )
    return {
        "rule": (
            "train.estimator auto: each candidate fitted on the fit part of the train split and scored on "
            "its validation part (the test split unseen); the best is trained on the whole train split"
        ),
        "metric": metric,
        "lower_is_better": metric in LOWER_IS_BETTER,
        "seed": seed,
        "validation": validation,
        "candidates": candidates,
        "winner": names[best],
        "reason": selection_reason(list(names), values, metric, best),
    }


def _shown(value: float | None) -> str:
    return "no value" if value is None or math.isnan(value) else f"{value:.4f}"


def selection_reason(names: list[str], values: list[float | None], metric: str, best: int) -> str:
    """Why the winner won, in numbers (pure)."""
    rest = [(n, v) for i, (n, v) in enumerate(zip(names, values, strict=True)) if i != best]
    if any(v == values[best] for _, v in rest):
        return f"tie on validation {metric} ({_shown(values[best])}): the simpler one, listed first"
    word = "lowest" if metric in LOWER_IS_BETTER else "highest"
    others = ", ".join(f"{n} {_shown(v)}" for n, v in rest)
    return f"{word} validation {metric}: {_shown(values[best])} vs {others}"


def selection_line(record: dict[str, Any] | None) -> str:
    """The run summary's line of what auto chose and on what numbers (pure); "" without a selection:
    `auto chose logistic_regression (validation roc_auc 0.7100 vs hist_gradient_boosting 0.6900)`."""
    if not record:
        return ""
    winner = record["winner"]
    scores_by_name = {c["name"]: c["score"] for c in record["candidates"]}
    best = scores_by_name[winner]
    others = ", ".join(f"{n} {_shown(s)}" for n, s in scores_by_name.items() if n != winner)
    tie = any(s == best for n, s in scores_by_name.items() if n != winner)
    return (
        f"auto chose {winner} (validation {record['metric']} {_shown(best)} vs {others}"
        + ("; a tie goes to the simpler one" if tie else "")
        + ")"
    )


def manifest_selection(record: dict[str, Any]) -> dict[str, Any]:
    """The part of the record the model manifest carries: the metric, each score, the winner and why."""
    return {
        "rule": "auto",
        "metric": record["metric"],
        "scores": {c["name"]: c["score"] for c in record["candidates"]},
        "winner": record["winner"],
        "reason": record["reason"],
    }


def read_selection(path: Path) -> dict[str, Any] | None:
    """The selection record beside a model, None when its estimator was named, not chosen."""
    return json.loads(path.read_text()) if path.exists() else None
