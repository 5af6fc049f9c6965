"""The pipeline's stages as data: what each `python -m mlpipe.pipeline.stages.<name>` reads (upstream
outputs, params) and writes. `mlpipe init` renders a project's dvc.yaml from it; the bundled dvc.yaml
holds the same stages plus the mlpipe source files each one imports (tests/unit/pipeline checks both)."""

from __future__ import annotations

from typing import Any

STAGE_PACKAGE = "mlpipe.pipeline.stages"  # stage <name> is module STAGE_PACKAGE.<name>: its BODY, its main
# The one list of stages, in order: dvc.yaml (bundled and rendered by init), the runner and the flow read it.
STAGES: dict[str, dict[str, list[str]]] = {
    "validate": {
        "deps": ["data"],
        "params": ["task", "dataset", "features", "validate"],
        "outs": ["artifacts/validate/profile.json", "artifacts/validate/report.md"],
    },
    "split": {
        "deps": ["data", "artifacts/validate/profile.json"],
        "params": ["seed", "dataset.time_column", "dataset.target", "split"],
        "outs": [
            "artifacts/split/train.parquet",
            "artifacts/split/test.parquet",
            "artifacts/split/split.json",
        ],
    },
    "train": {
        "deps": ["artifacts/split/train.parquet", "artifacts/split/split.json"],
        "params": ["seed", "task", "dataset.target", "dataset.positive_class", "features", "train"],
        "outs": ["artifacts/model"],
    },
    "evaluate": {
        # the train split for the trivial baseline's prior / mean (metrics.json baseline.<metric>)
        "deps": ["artifacts/model", "artifacts/split/test.parquet", "artifacts/split/train.parquet"],
        "params": ["task", "dataset.target", "features", "evaluate"],
        "outs": [
            "artifacts/evaluate/predictions.parquet",
            "artifacts/evaluate/predictions.json",
            "artifacts/evaluate/plots",
        ],
    },
}
# The locked environment is part of what makes the model and its predictions: a project with a uv.lock
# (the bundled one) lists it as a dependency of these stages, so an upgrade reruns them. The lock also
# pins Python's major.minor (requires-python).
LOCK_FILE = "uv.lock"
VENDOR = "vendor"  # mlpipe's wheel in a project made by `mlpipe init` (runtime.pin.VENDOR)
# Params only a binary project has (DVC refuses a listed param that params.yaml lacks).
BINARY_PARAMS = ("dataset.positive_class",)
LOCKED_STAGES = ("train", "evaluate")
METRICS_FILE = "metrics.json"
PLOTS_DIR = "artifacts/evaluate/plots"


def task_plots(task: str) -> list[Any]:
    """The DVC plot definitions of the files the evaluate stage writes for `task`."""
    confusion = {
        "Confusion matrix on the test split": {
            "template": "confusion",  # predicted across, actual down: as the PNG (scikit-learn's) draws it
            "x": "predicted",
            "y": {f"{PLOTS_DIR}/confusion.csv": "actual"},
        }
    }
    if task == "binary":
        roc = {
            "ROC on the test split": {"template": "simple", "x": "fpr", "y": {f"{PLOTS_DIR}/roc.csv": "tpr"}}
        }
        return [roc, confusion, f"{PLOTS_DIR}/roc.png", f"{PLOTS_DIR}/confusion_matrix.png"]
    if task == "multiclass":
        return [confusion, f"{PLOTS_DIR}/confusion_matrix.png"]
    return [
        {
            "Predicted vs actual on the test split": {
                "template": "scatter",
                "x": "actual",
                "y": {f"{PLOTS_DIR}/predicted_vs_actual.csv": "predicted"},
            }
        },
        {
            "Residuals on the test split": {
                "template": "scatter",
                "x": "predicted",
                "y": {f"{PLOTS_DIR}/residuals.csv": "residual"},
            }
        },
        f"{PLOTS_DIR}/predicted_vs_actual.png",
        f"{PLOTS_DIR}/residuals.png",
    ]


def project_pipeline(
    task: str, source_files: list[str] | None = None, locked: bool = False, vendored: bool = False
) -> dict:
    """A project's dvc.yaml as a mapping: the stages, the user's own source file(s) as dependencies of
    the first stage (a change to them reruns the pipeline), the lock file of a `locked` project (and
    mlpipe's wheel, vendor/, of a `vendored` one: made by `mlpipe init`) as dependencies of the stages that
    make the model and its predictions, the task's plots."""
    stages = {}
    locked_deps = [LOCK_FILE] * (locked or vendored) + [VENDOR] * vendored
    for name, spec in STAGES.items():
        deps = list(spec["deps"]) + (list(source_files or []) if name == "validate" else [])
        deps += locked_deps if name in LOCKED_STAGES else []
        stage: dict[str, Any] = {
            "cmd": f"python -m {STAGE_PACKAGE}.{name}",
            "deps": deps,
            "params": [p for p in spec["params"] if task == "binary" or p not in BINARY_PARAMS],
            "outs": list(spec["outs"]),
        }
        if name == "evaluate":
            stage["metrics"] = [{METRICS_FILE: {"cache": False}}]
        stages[name] = stage
    return {"stages": stages, "plots": task_plots(task)}


def stage_entry(root, stage: str, key: str) -> list:
    """`stages.<stage>.<key>` of the project's dvc.yaml (deps, params, outs), [] when absent."""
    from pathlib import Path

    import yaml

    pipeline = yaml.safe_load((Path(root) / "dvc.yaml").read_text()) or {}
    return pipeline.get("stages", {}).get(stage, {}).get(key, []) or []


def check_source_tracked(root, source: str) -> None:
    """A user's own loader that lives in the project must be a dependency of the first stage, or a change
    to it would rerun nothing; ConfigError naming the file and the fix."""
    from pathlib import Path

    from mlpipe.data.zone import user_source_file
    from mlpipe.errors import ConfigError

    own = user_source_file(source, Path(root))
    if own is None:
        return
    rel = str(own.relative_to(root))
    if rel not in stage_entry(root, "validate", "deps"):
        raise ConfigError(
            f"dvc.yaml: {rel} (dataset.source {source}) is not a dependency of stage validate "
            "(rule: a change to your loader reruns the pipeline; add it under stages.validate.deps)"
        )


def check_positive_class_tracked(root, positive_class) -> None:
    """A project that sets dataset.positive_class must list it as a param of stage train, or changing it
    would retrain nothing (a dvc.yaml written before the key existed); ConfigError naming the fix."""
    from mlpipe.errors import ConfigError

    if positive_class is None:
        return
    listed = stage_entry(root, "train", "params")
    if not {"dataset", "dataset.positive_class"} & {p for p in listed if isinstance(p, str)}:
        raise ConfigError(
            "dvc.yaml: dataset.positive_class is not a param of stage train (rule: a change to the positive "
            "class retrains the model; add it under stages.train.params)"
        )


# Binary metrics that depend on evaluate.threshold (the others rank probabilities).
THRESHOLD_METRICS = ("accuracy", "f1", "precision", "recall")


def auto_reads(params) -> list[str]:
    """The params train.estimator auto picks on beyond the train stage's own, those params.yaml sets (a
    param it lacks cannot be listed): the sweep's metric and validation fraction, and evaluate.threshold
    when the metric thresholds probabilities (pure)."""
    from mlpipe.config import AUTO_ESTIMATOR

    if params.train.estimator != AUTO_ESTIMATOR:
        return []
    in_sweep = params.sweep.model_fields_set if params.sweep else set()
    keys = [f"sweep.{k}" for k in ("metric", "validation_fraction") if k in in_sweep]
    thresholded = params.task == "binary" and params.sweep_metric in THRESHOLD_METRICS
    return keys + (["evaluate.threshold"] if thresholded and "evaluate" in params.model_fields_set else [])


def check_selection_tracked(root, params) -> None:
    """A project whose train.estimator is auto must list what auto picks on (auto_reads) as params of stage
    train, or changing it would not retrain; ConfigError naming the keys and the fix."""
    from mlpipe.errors import ConfigError

    listed = [p for p in stage_entry(root, "train", "params") if isinstance(p, str)]
    missing = [k for k in auto_reads(params) if not any(k == p or k.startswith(f"{p}.") for p in listed)]
    if missing:
        raise ConfigError(
            f"dvc.yaml: {', '.join(missing)} not a param of stage train (rule: train.estimator auto picks "
            "on it, so a change to it retrains; add it under stages.train.params)"
        )


def with_locked_stages(pipeline: dict, deps: list[str]) -> dict:
    """`pipeline` (a dvc.yaml mapping) with `deps` among the dependencies of the stages that make the model
    and its predictions (LOCKED_STAGES), where they are missing: a project pinned after its init. Pure."""
    stages = {
        name: {
            **stage,
            "deps": list(stage.get("deps", [])) + [d for d in deps if d not in stage.get("deps", [])],
        }
        if name in LOCKED_STAGES
        else stage
        for name, stage in pipeline.get("stages", {}).items()
    }
    return {**pipeline, "stages": stages}
