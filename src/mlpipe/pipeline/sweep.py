"""Hyperparameter sweep: the candidate grid, the validation part of the train split, one candidate's
fit and score, the winner, and the winner written into params.yaml with its comments kept.

Candidates are fitted exactly as the train stage fits (`fit_model`, seed + TRAIN_SEED_OFFSET, threads
pinned to train.n_jobs); the test split is never looked at here, it stays for `evaluate` and the gate.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import math
import re
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml
from threadpoolctl import threadpool_limits

from mlpipe.config import (
    LOWER_IS_BETTER,
    PARAMS_FILE,
    FeaturesCfg,
    Params,
    ProjectPaths,
    TrainCfg,
    read_params_dict,
)
from mlpipe.data.frames import split_by_time, split_random
from mlpipe.errors import SnapshotMismatch, SweepRefused
from mlpipe.model.manifest import package_versions
from mlpipe.model.outputs import classes_of, scores
from mlpipe.pipeline.evaluate import metrics_for
from mlpipe.pipeline.features import select_features, target_vector
from mlpipe.pipeline.stages.train import TRAIN_SEED_OFFSET
from mlpipe.pipeline.train import build_pipeline, fit_model
from mlpipe.runtime.lockfiles import dvc_file_md5, stage_output_hashes

VALIDATION_SEED_OFFSET = 4  # seed + k per step: split 1, train 2, monitor sample 3, sweep validation 4
# Set by mlpipe from config, never by the grid: the seed, the pinned thread count, the column layout.
RESERVED = ("random_state", "n_jobs", "categorical_features")


def expand_grid(base: dict[str, Any], grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of `grid` over `base` hyperparams, in grid order (the last key varies fastest)."""
    keys = list(grid)
    return [
        {**base, **dict(zip(keys, values, strict=True))}
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def check_grid(
    train: TrainCfg, features: FeaturesCfg, grid: dict[str, list[Any]], task: str = "binary"
) -> None:
    """Refuse grid keys the estimator does not take, or that config sets itself (seed, threads)."""
    reserved = sorted(set(grid) & set(RESERVED))
    if reserved:
        raise SweepRefused(
            f"sweep.grid: {reserved} are set by mlpipe (rule: seeds and threads come from "
            "params.yaml seed and train.n_jobs, never from the grid)"
        )
    accepted = build_pipeline(train, features, seed=0, task=task).named_steps["model"].get_params()
    unknown = sorted(set(grid) - set(accepted))
    if unknown:
        raise SweepRefused(
            f"sweep.grid: {unknown} are not hyperparameters of {train.estimator} "
            f"(rule: grid keys are train.hyperparams names)"
        )


def carve_validation(
    train: pd.DataFrame, params: Params, fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(fit, validation) parts of the train split, cut the way the split stage cuts train from test:
    by time for time-ordered data (the validation rows are the newest, never shuffled across the
    cut), else a seeded draw (seed + VALIDATION_SEED_OFFSET)."""
    if params.split.method == "time":
        fit, valid, _ = split_by_time(train, params.dataset.time_column, fraction)
    else:
        fit, valid = split_random(train, fraction, params.seed + VALIDATION_SEED_OFFSET)
    classes_needed = 2 if params.task != "regression" else 1
    if fit.empty or valid.empty or valid[params.dataset.target].nunique() < classes_needed:
        raise SweepRefused(
            f"sweep: validation part has {len(valid)} rows "
            f"({valid[params.dataset.target].nunique()} classes), "
            f"fit part {len(fit)} (rule: both parts non-empty, both classes in validation)"
        )
    return fit, valid


def candidate_train_cfg(train: TrainCfg, hyperparams: dict[str, Any]) -> TrainCfg:
    """The train section with these hyperparams: estimator and n_jobs as configured."""
    return train.model_copy(update={"hyperparams": dict(hyperparams)})


def score_candidate(
    train: TrainCfg,
    features: FeaturesCfg,
    X_fit: pd.DataFrame,
    y_fit: pd.Series,
    X_val: pd.DataFrame,
    y_val: pd.Series,
    seed: int,
    threshold: float,
    task: str = "binary",
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


def scoring_identity() -> dict[str, str]:
    """What a candidate's score depends on besides data and config: the model packages' exact versions
    and the sha256 of the mlpipe code that fits and scores. Equal on every worker or the scores are not
    comparable with each other or with the pipeline's model."""
    import mlpipe.pipeline.evaluate
    import mlpipe.pipeline.features
    import mlpipe.pipeline.train

    code = hashlib.sha256()
    for module in (mlpipe.pipeline.train, mlpipe.pipeline.features, mlpipe.pipeline.evaluate):
        code.update(Path(module.__file__).read_bytes())
    code.update(Path(__file__).read_bytes())
    return {**package_versions(), "mlpipe_code": code.hexdigest()}


def pick_winner(metric_values: list[float], metric: str) -> int:
    """Index of the best value (lower is better for losses); ties go to the earlier candidate; NaN never
    wins."""
    sign = 1.0 if metric in LOWER_IS_BETTER else -1.0
    ranked = [(sign * v, i) for i, v in enumerate(metric_values) if v is not None and not math.isnan(v)]
    if not ranked:
        raise SweepRefused(
            f"sweep: no candidate has a {metric} value (rule: at least one candidate must score)"
        )
    return min(ranked)[1]


def read_verified_train(paths: ProjectPaths) -> tuple[pd.DataFrame, dict[str, str]]:
    """The train split as DVC recorded it for the current data: its bytes must match dvc.lock (md5) and
    split.json (sha256), and split.json's data hash must be data.dvc's. Returns (frame, identity)."""
    rel = str(paths.train_split.relative_to(paths.root))
    if not paths.train_split.exists() or not paths.split_record.exists():
        raise SnapshotMismatch(
            f"{rel}: missing (rule: the sweep scores the split `mlpipe run` produced; run it first)"
        )
    record = json.loads(paths.split_record.read_text())
    data_md5 = dvc_file_md5(paths.root / "data.dvc")
    if record.get("data_md5") != data_md5:
        raise SnapshotMismatch(
            f"{rel}: split from data {record.get('data_md5')}, data.dvc is at {data_md5} "
            "(rule: the sweep scores the current data's split; run `mlpipe run` first)"
        )
    stale = stale_split_params(paths.root / "dvc.lock", read_params_dict(paths.root / PARAMS_FILE))
    if stale:
        raise SnapshotMismatch(
            f"{rel}: split made with other params than params.yaml's {stale} (rule: the sweep "
            "scores the split the pipeline would train on; run `mlpipe run` first)"
        )
    payload = paths.train_split.read_bytes()
    md5, sha = hashlib.md5(payload).hexdigest(), hashlib.sha256(payload).hexdigest()
    locked = stage_output_hashes(paths.root / "dvc.lock").get("split", {}).get(rel)
    if md5 != locked or sha != record["parts"]["train"]["sha256"]:
        raise SnapshotMismatch(
            f"{rel}: md5 {md5} but dvc.lock records {locked} (rule: the sweep scores the split "
            "DVC produced; run `mlpipe run` or `dvc checkout`)"
        )
    return pd.read_parquet(io.BytesIO(payload)), {
        "train_md5": md5,
        "train_sha256": sha,
        "data_md5": data_md5 or "",
    }


def stale_split_params(lock_file: Path, raw: dict[str, Any]) -> list[str]:
    """params.yaml keys whose value differs from the one dvc.lock recorded for the split stage."""
    doc = yaml.safe_load(lock_file.read_text()) if lock_file.exists() else {}
    recorded = ((doc or {}).get("stages", {}).get("split", {}).get("params", {}) or {}).get(PARAMS_FILE, {})
    stale = []
    for key, value in recorded.items():
        current: Any = raw
        for part in key.split("."):
            current = current.get(part) if isinstance(current, dict) else None
        if json.dumps(current, sort_keys=True, default=str) != json.dumps(value, sort_keys=True, default=str):
            stale.append(key)
    return sorted(stale)


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


def candidate_seed(params: Params) -> int:
    """The train stage's seed: a candidate and the final model draw from the same stream."""
    return params.seed + TRAIN_SEED_OFFSET


_LINE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<key>[^\s#:][^:#]*?):(?P<gap>[ \t]*)(?P<value>[^#\n]*?)(?P<comment>[ \t]+#.*)?$"
)


def _yaml_scalar(value: Any) -> str:
    # JSON scalars (numbers, true/false/null, double-quoted strings) are valid YAML and read back the same.
    return json.dumps(value)


def set_hyperparams_text(text: str, values: dict[str, Any]) -> str:
    """params.yaml text with train.hyperparams.<key> set to `values`, edited line by line so every
    comment, blank line and the order of keys stay as they are (keys not yet there are appended to the
    block). Checked by parsing: only those values differ from the original."""
    lines = text.splitlines(keepends=True)
    in_train, hp_indent, block_indent, block_end = False, None, None, None
    found: dict[str, int] = {}
    for i, line in enumerate(lines):
        m = _LINE.match(line.rstrip("\n"))
        if not m or line.lstrip().startswith("#"):
            continue
        indent, key = len(m["indent"]), m["key"].strip()
        if indent == 0:
            in_train, hp_indent = key == "train", None
        elif in_train and (hp_indent is None or indent <= hp_indent):
            # a key of the train section: hyperparams opens the block, any other closes it
            hp_indent = indent if key == "hyperparams" and not m["value"].strip() else None
            if hp_indent is not None and found:
                raise SweepRefused("params.yaml: train.hyperparams twice (rule: one block)")
        elif in_train:
            block_indent = indent if block_indent is None else block_indent
            block_end = i
            if indent == block_indent:
                found[key] = i
    if block_end is None:
        raise SweepRefused(
            "params.yaml: no block `train: hyperparams:` of key: value lines (rule: the sweep edits "
            "train.hyperparams in place)"
        )
    pad = " " * block_indent
    appended = []
    for key, value in values.items():
        if key in found:
            i = found[key]
            m = _LINE.match(lines[i].rstrip("\n"))
            new_value = _yaml_scalar(value)
            comment = m["comment"] or ""
            if comment:
                # keep the comment in its column when the new value fits
                width = len(m["value"]) + len(comment) - len(comment.lstrip())
                comment = " " * max(1, width - len(new_value)) + comment.lstrip()
            newline = "\n" if lines[i].endswith("\n") else ""
            lines[i] = f"{m['indent']}{m['key']}:{m['gap'] or ' '}{new_value}{comment}{newline}"
        else:
            appended.append(f"{pad}{key}: {_yaml_scalar(value)}\n")
    if appended:
        if not lines[block_end].endswith("\n"):
            lines[block_end] += "\n"
        lines[block_end + 1 : block_end + 1] = appended
    out = "".join(lines)
    before, after = yaml.safe_load(text), yaml.safe_load(out)
    expected = json.loads(json.dumps(before))
    expected["train"]["hyperparams"].update(values)
    if json.loads(json.dumps(after)) != expected:
        raise SweepRefused(
            "params.yaml: editing train.hyperparams in place changed something else (rule: the sweep "
            "changes only the winner's values); edit it by hand"
        )
    return out


def write_hyperparams(params_file: Path, values: dict[str, Any]) -> bool:
    """Set train.hyperparams values in params.yaml in place; False when they were already so."""
    text = params_file.read_text(encoding="utf-8")
    current = (yaml.safe_load(text).get("train") or {}).get("hyperparams") or {}
    if all(k in current and current[k] == v and type(current[k]) is type(v) for k, v in values.items()):
        return False
    params_file.write_text(set_hyperparams_text(text, values), encoding="utf-8")
    return True
