"""Hyperparameter sweep: the candidate grid, the train split it scores (verified against DVC), and the
winner written into params.yaml with its comments kept. The validation part of the train split, one
candidate's fit and score and the winner are pipeline.selection's (shared with train.estimator auto);
they are imported here for the sweep's callers.

Candidates are fitted exactly as the train stage fits (`fit_model`, Params.seed_for("train"), threads
pinned to train.n_jobs); the test split is never looked at here, it stays for `evaluate` and the gate.
"""

from __future__ import annotations

import hashlib
import io
import itertools
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mlpipe.config import (
    AUTO_ESTIMATOR,
    PARAMS_FILE,
    FeaturesCfg,
    Params,
    ProjectPaths,
    Task,
    TrainCfg,
    bounded_yaml,
    read_params_dict,
)
from mlpipe.errors import SnapshotMismatch, SweepRefused
from mlpipe.model.manifest import package_versions
from mlpipe.pipeline.selection import (
    carve_validation,
    pick_winner,
    score_candidate,
    training_frames,
)
from mlpipe.pipeline.train import build_pipeline
from mlpipe.runtime.lockfiles import dvc_file_md5, stage_output_hashes

__all__ = [  # the shared selection steps, for the sweep's callers
    "carve_validation",
    "pick_winner",
    "score_candidate",
    "training_frames",
]

# Set by mlpipe from config, never by the grid: the seed, the pinned thread count, the column layout.
RESERVED = ("random_state", "n_jobs", "categorical_features")


def expand_grid(base: dict[str, Any], grid: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """Every combination of `grid` over `base` hyperparams, in grid order (the last key varies fastest)."""
    keys = list(grid)
    return [
        {**base, **dict(zip(keys, values, strict=True))}
        for values in itertools.product(*(grid[k] for k in keys))
    ]


def check_grid(train: TrainCfg, features: FeaturesCfg, grid: dict[str, list[Any]], task: Task) -> None:
    """Refuse an estimator auto chooses (it has no hyperparams of its own), grid keys the estimator does not
    take, or that config sets itself (seed, threads)."""
    if train.estimator == AUTO_ESTIMATOR:
        raise SweepRefused(
            "sweep: train.estimator is auto (rule: the sweep tunes one estimator; set train.estimator to the "
            "one auto chose, named in artifacts/model/selection.json, then sweep)"
        )
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


def candidate_train_cfg(train: TrainCfg, hyperparams: dict[str, Any]) -> TrainCfg:
    """The train section with these hyperparams: estimator and n_jobs as configured."""
    return train.model_copy(update={"hyperparams": dict(hyperparams)})


def scoring_identity() -> dict[str, str]:
    """What a candidate's score depends on besides data and config: the model packages' exact versions
    and the sha256 of the mlpipe code that fits and scores. Equal on every worker or the scores are not
    comparable with each other or with the pipeline's model."""
    import mlpipe.pipeline.evaluate
    import mlpipe.pipeline.features
    import mlpipe.pipeline.selection
    import mlpipe.pipeline.train

    code = hashlib.sha256()
    pipeline = mlpipe.pipeline
    for module in (pipeline.train, pipeline.features, pipeline.evaluate, pipeline.selection):
        code.update(Path(module.__file__).read_bytes())
    code.update(Path(__file__).read_bytes())
    return {**package_versions(), "mlpipe_code": code.hexdigest()}


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


def candidate_seed(params: Params) -> int:
    """The train stage's seed: a candidate and the final model draw from the same stream."""
    return params.seed_for("train")


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
    before, after = bounded_yaml(text, "params.yaml"), bounded_yaml(out, "params.yaml")
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
    current = (bounded_yaml(text, str(params_file)).get("train") or {}).get("hyperparams") or {}
    if all(k in current and current[k] == v and type(current[k]) is type(v) for k, v in values.items()):
        return False
    params_file.write_text(set_hyperparams_text(text, values), encoding="utf-8")
    return True


# ---- the outcome ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SweepChoice:
    """What the candidates' scores decide (pure): each candidate's validation value (None when it failed),
    the winner's index and hyperparams (the grid's keys), and one table row per candidate."""

    values: list[float | None]
    best: int
    winner: dict[str, Any]
    rows: list[dict[str, Any]]


def candidate_row(i: int, hp: dict, grid: dict, result: dict, metric: str) -> dict:
    """One candidate as the summary and the Prefect table show it: grid values, score, fit time, worker."""
    row = {"candidate": i, **{k: hp[k] for k in grid}}
    if "error" in result:
        return row | {f"val_{metric}": None, "fit_s": None, "worker": None, "error": result["error"]}
    return row | {
        f"val_{metric}": result["metrics"][metric],
        "fit_s": result["fit_s"],
        "worker": result["worker"],
    }


def choose(candidates: list[dict], grid: dict, results: list[dict], metric: str) -> SweepChoice:
    """The winner of `results` (in candidate order) by `metric`; SweepRefused when none scored."""
    values = [r["metrics"][metric] if "metrics" in r else None for r in results]
    best = pick_winner(values, metric)
    rows = [
        candidate_row(i, hp, grid, r, metric)
        for i, (hp, r) in enumerate(zip(candidates, results, strict=True))
    ]
    return SweepChoice(values, best, {k: candidates[best][k] for k in grid}, rows)


@dataclass(frozen=True)
class SweepResult:
    """What `mlpipe sweep` reports (and prints with --json): the parent MLflow run, every candidate, the
    winner, the timings, and with apply the params commit and the pipeline run that produced the winner."""

    run_id: str
    candidates: list[dict[str, Any]]
    winner: int
    winner_hyperparams: dict[str, Any]
    winner_run_id: str
    metric: str
    best_value: float
    candidates_wall_s: float
    candidates_span_s: float
    fit_s_total: float
    dask: str
    workers: int | None
    applied: bool = False
    params_changed: bool = False
    commit: str | None = None
    pipeline: dict[str, Any] | None = None
