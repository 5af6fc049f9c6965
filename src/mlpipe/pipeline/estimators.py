"""Which scikit-learn class `train.estimator` names for the task (or which candidates `auto` compares),
its checked hyperparameters, and the preprocessing its kind needs. One place decides; train, sweep and the
preflight ask it."""

from __future__ import annotations

import importlib
import inspect
from dataclasses import dataclass
from typing import Any

from mlpipe.config import AUTO_ESTIMATOR
from mlpipe.errors import ConfigError

# Short names: the class for a classification task and for regression (None: no such form).
SHORT_NAMES: dict[str, tuple[str | None, str | None]] = {
    "hist_gradient_boosting": (
        "sklearn.ensemble.HistGradientBoostingClassifier",
        "sklearn.ensemble.HistGradientBoostingRegressor",
    ),
    "random_forest": ("sklearn.ensemble.RandomForestClassifier", "sklearn.ensemble.RandomForestRegressor"),
    "extra_trees": ("sklearn.ensemble.ExtraTreesClassifier", "sklearn.ensemble.ExtraTreesRegressor"),
    "logistic_regression": ("sklearn.linear_model.LogisticRegression", None),
    "ridge": (None, "sklearn.linear_model.Ridge"),
}
# train.estimator auto: the candidates compared, each with its class's defaults (DEFAULTS), the simpler
# first: a tie goes to the earlier one.
AUTO_CANDIDATES = {
    "classification": ("logistic_regression", "hist_gradient_boosting"),
    "regression": ("ridge", "hist_gradient_boosting"),
}
# Defaults under the configured hyperparams, so each short name trains out of the box.
DEFAULTS: dict[str, dict[str, Any]] = {
    "RandomForestClassifier": {"n_estimators": 200, "min_samples_leaf": 5},
    "RandomForestRegressor": {"n_estimators": 200, "min_samples_leaf": 5},
    "ExtraTreesClassifier": {"n_estimators": 200, "min_samples_leaf": 5},
    "ExtraTreesRegressor": {"n_estimators": 200, "min_samples_leaf": 5},
    "LogisticRegression": {"max_iter": 1000},
}
# Set by mlpipe from params (seed, train.n_jobs), never by hyperparams.
MANAGED = ("random_state", "n_jobs", "categorical_features")
# Classes whose n_jobs does nothing and warns when set (scikit-learn 1.8 deprecated it).
N_JOBS_DEPRECATED = ("LogisticRegression",)


@dataclass(frozen=True)
class EstimatorSpec:
    """The resolved estimator: its class, the hyperparams it gets, and the preprocessing kind.

    kind: `native` (ordinal codes, the estimator handles categories and missing values itself),
    `tree` (ordinal codes, median-imputed numbers), `scaled` (one-hot, imputed, standardised numbers)."""

    path: str
    cls: type
    hyperparams: dict[str, Any]
    kind: str
    classifier: bool


def _import_class(path: str) -> type:
    module_name, _, name = path.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError):
        raise ConfigError(
            f"train.estimator: {path!r} cannot be imported "
            f"(rule: a short name ({', '.join(SHORT_NAMES)}) or the dotted path of an estimator class)"
        ) from None
    if not inspect.isclass(cls) or not hasattr(cls, "fit"):
        raise ConfigError(f"train.estimator: {path!r} is not an estimator class (rule: a class with fit)")
    return cls


def auto_candidates(task: str) -> tuple[str, ...]:
    """The short names train.estimator auto compares under `task`."""
    return AUTO_CANDIDATES["regression" if task == "regression" else "classification"]


def check_estimator(name: str, task: str, hyperparams: dict[str, Any]) -> list[EstimatorSpec]:
    """train.estimator as the preflight checks it: the named estimator, or every candidate of auto."""
    if name == AUTO_ESTIMATOR:
        return [resolve_estimator(n, task, {}) for n in auto_candidates(task)]
    return [resolve_estimator(name, task, hyperparams)]


def class_path(name: str, task: str) -> str:
    """The dotted class path a short name or path stands for under `task`."""
    if name == AUTO_ESTIMATOR:
        raise ConfigError(
            "train.estimator: auto is a choice, not a class (rule: the train stage resolves it to one of "
            f"{', '.join(auto_candidates(task))}; pipeline.selection)"
        )
    if name not in SHORT_NAMES:
        if "." not in name:
            raise ConfigError(
                f"train.estimator: {name!r} unknown "
                f"(rule: one of {', '.join(SHORT_NAMES)}, auto or a dotted path)"
            )
        return name
    classifier, regressor = SHORT_NAMES[name]
    path = regressor if task == "regression" else classifier
    if path is None:
        fitting = ", ".join(k for k, v in SHORT_NAMES.items() if v[task == "regression"])
        raise ConfigError(f"train.estimator: {name} has no {task} form (rule: for {task} one of {fitting})")
    return path


def _kind(cls: type) -> str:
    module = cls.__module__
    if cls.__name__.startswith("HistGradientBoosting"):
        return "native"
    if module.startswith(("sklearn.ensemble", "sklearn.tree")):
        return "tree"
    return "scaled"


def resolve_estimator(name: str, task: str, hyperparams: dict[str, Any]) -> EstimatorSpec:
    """The estimator for `task`, refusing a class of the wrong kind, an unknown or managed hyperparam,
    and a classifier without predict_proba (metrics, the gate and the service need probabilities)."""
    from sklearn.base import is_classifier, is_regressor

    path = class_path(name, task)
    cls = _import_class(path)
    try:
        probe = cls()
    except TypeError as exc:
        raise ConfigError(
            f"train.estimator: {path} cannot be built without arguments ({exc}) "
            "(rule: an estimator whose required arguments have defaults)"
        ) from None
    classifier = is_classifier(probe)
    if task == "regression" and not is_regressor(probe):
        raise ConfigError(f"train.estimator: {path} is not a regressor (rule: task regression needs one)")
    if task != "regression" and not classifier:
        raise ConfigError(f"train.estimator: {path} is not a classifier (rule: task {task} needs one)")
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "args", "kwargs"}
    managed = sorted(set(hyperparams) & set(MANAGED))
    if managed:
        raise ConfigError(
            f"train.hyperparams: {managed} are set by mlpipe (rule: random_state from seed, "
            "n_jobs from train.n_jobs, categorical_features from features)"
        )
    unknown = sorted(set(hyperparams) - accepted)
    if unknown:
        raise ConfigError(
            f"train.hyperparams: {unknown} are not parameters of {path} "
            f"(rule: one of {', '.join(sorted(accepted - set(MANAGED)))})"
        )
    merged = {**DEFAULTS.get(cls.__name__, {}), **hyperparams}
    if classifier and not _has_proba(cls, merged):
        raise ConfigError(
            f"train.estimator: {path} gives no predict_proba with these hyperparams "
            "(rule: a classifier must give probabilities; e.g. SVC needs probability: true)"
        )
    return EstimatorSpec(path, cls, merged, _kind(cls), classifier)


def _has_proba(cls: type, hyperparams: dict[str, Any]) -> bool:
    try:
        return hasattr(cls(**hyperparams), "predict_proba")
    except Exception:  # noqa: BLE001 - a bad value is the fit's to report, with its own message
        return hasattr(cls, "predict_proba")


def build_estimator(spec: EstimatorSpec, seed: int, n_jobs: int, n_categorical: int) -> object:
    """An unfitted instance: the hyperparams, the seed and the thread count where the class takes them."""
    accepted = set(inspect.signature(spec.cls.__init__).parameters)
    extra: dict[str, Any] = {}
    if spec.kind == "native":
        extra["categorical_features"] = list(range(n_categorical))
    if "random_state" in accepted:
        extra["random_state"] = seed
    if "n_jobs" in accepted and spec.cls.__name__ not in N_JOBS_DEPRECATED:
        extra["n_jobs"] = n_jobs
    return spec.cls(**extra, **spec.hyperparams)
