"""train.estimator auto: the candidates compared on the validation part of the train split as the sweep
compares, the winner trained by the train stage, the same bytes every time, every score recorded and
stated; and the rules around it (no hyperparams, no sweep, what DVC must track)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest
import yaml
from pydantic import ValidationError

from mlpipe.config import Params, ProjectPaths
from mlpipe.errors import ConfigError, SweepRefused
from mlpipe.flows.common import RunSummary, render_markdown, render_text
from mlpipe.pipeline.estimators import check_estimator, resolve_estimator
from mlpipe.pipeline.layout import check_selection_tracked, project_pipeline
from mlpipe.pipeline.selection import (
    choose_estimator,
    read_selection,
    selection_line,
    selection_record,
)
from mlpipe.pipeline.stages.train import train_model
from mlpipe.pipeline.sweep import check_grid
from mlpipe.registry.tracking import selection_fields


def table_params(columns: list[str], task: str, **sections) -> Params:
    """An auto project over a table of numerical columns `x*` and target `y`, split at random."""
    return Params.model_validate(
        {
            "seed": 7,
            "task": task,
            "dataset": {"source": "files", "path": "t.csv", "target": "y", "time_column": None},
            "features": {"categorical": [], "numerical": columns},
            "validate": {"required_not_null": [], "max_null_rate": 0.5},
            "split": {"method": "random", "test_fraction": 0.2},
            "train": {"estimator": "auto", "n_jobs": 1},
            "model": {"name": "t", "experiment": "t"},
            **sections,
        }
    )


def table(kind: str, n: int = 400) -> pd.DataFrame:
    """`linear`: y a noisy linear function of x0..x4 (a regularised linear model's table); `interaction`:
    y decided by the signs of x0 and x1 together (no linear model separates it, trees do)."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 5))
    df = pd.DataFrame(X, columns=[f"x{i}" for i in range(5)])
    if kind == "linear":
        df["y"] = X @ np.array([1.5, -2.0, 1.0, 0.5, -1.0]) + rng.normal(0, 1, n)
    else:
        df["y"] = np.where((X[:, 0] > 0) ^ (X[:, 1] > 0), 3.0, -3.0) + rng.normal(0, 0.3, n)
    return df


def as_labels(df: pd.DataFrame) -> pd.DataFrame:
    return df.assign(y=(df["y"] > 0).astype("int64"))


def chosen(df: pd.DataFrame, task: str) -> dict:
    params = table_params([c for c in df.columns if c != "y"], task)
    return choose_estimator(params, df, params.seed_for("train")).record


def scores_of(record: dict) -> dict:
    return {c["name"]: c["score"] for c in record["candidates"]}


def test_auto_picks_the_linear_model_where_it_wins_and_says_by_how_much():
    binary = chosen(as_labels(table("linear")), "binary")
    assert binary["winner"] == "logistic_regression" and binary["metric"] == "roc_auc"
    scores = scores_of(binary)
    assert scores["logistic_regression"] > scores["hist_gradient_boosting"]
    assert binary["reason"].startswith("highest validation roc_auc: ")
    regression = chosen(table("linear"), "regression")
    assert regression["winner"] == "ridge" and regression["metric"] == "r2"
    assert set(scores_of(regression)) == {"ridge", "hist_gradient_boosting"}


def test_auto_picks_gradient_boosting_where_an_interaction_decides():
    for task, df in (("binary", as_labels(table("interaction"))), ("regression", table("interaction"))):
        record = chosen(df, task)
        scores = scores_of(record)
        assert record["winner"] == "hist_gradient_boosting", record
        assert scores["hist_gradient_boosting"] > max(s for n, s in scores.items() if n != record["winner"])


def test_a_loss_picks_the_lowest_and_a_tie_goes_to_the_simpler_candidate():
    names = ("ridge", "hist_gradient_boosting")
    validation = {"method": "random", "fraction": 0.2}
    lowest = selection_record(names, [3.2, 2.5], "rmse", "regression", 9, validation)
    assert lowest["winner"] == "hist_gradient_boosting" and lowest["lower_is_better"]
    assert lowest["reason"] == "lowest validation rmse: 2.5000 vs ridge 3.2000"
    tie = selection_record(names, [0.5, 0.5], "r2", "regression", 9, validation)
    assert tie["winner"] == "ridge" and tie["reason"].startswith("tie on validation r2")
    assert selection_line(tie).endswith("hist_gradient_boosting 0.5000; a tie goes to the simpler one)")
    unscored = selection_record(names, [float("nan"), 0.1], "r2", "regression", 9, validation)
    assert unscored["winner"] == "hist_gradient_boosting" and scores_of(unscored)["ridge"] is None


def test_the_summary_line_is_read_from_the_record_and_names_every_score():
    record = selection_record(
        ("logistic_regression", "hist_gradient_boosting"), [0.71, 0.69], "roc_auc", "binary", 9, {}
    )
    line = selection_line(record)
    assert line == (
        "auto chose logistic_regression (validation roc_auc 0.7100 vs hist_gradient_boosting 0.6900)"
    )
    assert selection_line(None) == ""
    fields = {f: "" for f in RunSummary.__dataclass_fields__}
    summary = RunSummary(**{**fields, "metrics": {}, "estimator": line})
    assert f"  estimator:     {line}" in render_text(summary).splitlines()
    assert f"- estimator: {line}" in render_markdown(summary)
    assert "estimator:" not in render_text(RunSummary(**{**fields, "metrics": {}}))  # a named estimator


@pytest.fixture
def project(tmp_path, make_frame, params_path):
    """A project whose train split is 300 flights-like rows (time-ordered) and whose estimator is auto."""
    raw = yaml.safe_load(params_path.read_text())
    raw["train"] = {"estimator": "auto", "n_jobs": 1, "hyperparams": {}}
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(raw))
    paths = ProjectPaths(tmp_path)
    paths.train_split.parent.mkdir(parents=True)
    make_frame(300, seed=3).to_parquet(paths.train_split)
    sha = hashlib.sha256(paths.train_split.read_bytes()).hexdigest()
    paths.split_record.write_text(json.dumps({"data_md5": "d" * 32, "parts": {"train": {"sha256": sha}}}))
    return Params.model_validate(raw), paths


def model_dir_bytes(paths: ProjectPaths) -> dict[str, bytes]:
    return {f.name: f.read_bytes() for f in sorted(paths.model.parent.iterdir())}


def test_the_train_stage_trains_autos_winner_and_gives_the_same_bytes_twice(project):
    params, paths = project
    train_model(params, paths)
    first = model_dir_bytes(paths)
    fit_seconds = json.loads(paths.selection_fit_seconds.read_text())
    train_model(params, paths)
    assert model_dir_bytes(paths) == first  # model, manifest and selection.json: reproduce compares them
    assert set(first) == {"model.skops", "manifest.json", "selection.json"}

    record = read_selection(paths.selection)
    assert [c["name"] for c in record["candidates"]] == ["logistic_regression", "hist_gradient_boosting"]
    assert all(isinstance(c["score"], float) for c in record["candidates"])
    assert record["validation"]["method"] == "time" and record["validation"]["fit_rows"] == 240
    assert record["seed"] == params.seed_for("train")
    manifest = json.loads(paths.manifest.read_text())
    assert manifest["estimator"] == record["winner"]
    assert manifest["selection"]["scores"] == scores_of(record)
    assert fit_seconds["model_sha256"] == manifest["model_sha256"]
    assert set(fit_seconds["fit_s"]) == set(scores_of(record))

    winner = params.train.model_copy(update={"estimator": record["winner"]})
    named = params.model_copy(update={"train": winner})
    train_model(named, paths)  # the winner named: the same model, and no stale record of a choice
    assert model_dir_bytes(paths)["model.skops"] == first["model.skops"]
    assert not paths.selection.exists() and not paths.selection_fit_seconds.exists()


def test_mlflow_gets_the_winner_every_score_and_fit_seconds_only_of_this_model():
    record = selection_record(("ridge", "hist_gradient_boosting"), [0.9, 0.8], "r2", "regression", 9, {})
    seconds = {"model_sha256": "abc", "fit_s": {"ridge": 0.01, "hist_gradient_boosting": 0.2}}
    params, metrics = selection_fields(record, seconds, "abc")
    assert params["train.estimator_chosen"] == "ridge" and params["train.selection_metric"] == "r2"
    assert metrics == {
        "selection.ridge.r2": 0.9,
        "selection.hist_gradient_boosting.r2": 0.8,
        "selection.ridge.fit_s": 0.01,
        "selection.hist_gradient_boosting.fit_s": 0.2,
    }
    assert set(selection_fields(record, seconds, "another model")[1]) == {
        "selection.ridge.r2",
        "selection.hist_gradient_boosting.r2",
    }
    assert selection_fields(None, None, "abc") == ({}, {})


def test_auto_is_accepted_where_the_estimator_is_checked_and_refused_where_it_cannot_apply(params):
    assert [s.path for s in check_estimator("auto", "regression", {})] == [
        "sklearn.linear_model.Ridge",
        "sklearn.ensemble.HistGradientBoostingRegressor",
    ]
    assert [s.classifier for s in check_estimator("auto", "multiclass", {})] == [True, True]
    with pytest.raises(ConfigError, match="auto is a choice, not a class"):
        resolve_estimator("auto", "binary", {})
    with pytest.raises(ValidationError, match=r"hyperparams \['learning_rate'\] given with estimator auto"):
        params.train.model_validate({"estimator": "auto", "n_jobs": 1, "hyperparams": {"learning_rate": 0.1}})
    auto = params.train.model_copy(update={"estimator": "auto", "hyperparams": {}})
    with pytest.raises(SweepRefused, match="sweep: train.estimator is auto"):
        check_grid(auto, params.features, params.sweep.grid, params.task)


def test_what_auto_picks_on_must_be_a_param_of_stage_train(tmp_path):
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(project_pipeline("binary")))
    check_selection_tracked(tmp_path, table_params(["x0"], "binary"))  # init's project: defaults only
    tuned = table_params(["x0"], "binary", sweep={"grid": {"max_iter": [10]}, "metric": "f1"})
    with pytest.raises(ConfigError, match=r"dvc.yaml: sweep.metric not a param of stage train"):
        check_selection_tracked(tmp_path, tuned)  # evaluate left out: its default threshold is no param
    thresholded = tuned.model_copy(update={"evaluate": tuned.evaluate})  # f1 thresholds probabilities
    with pytest.raises(ConfigError, match=r"sweep.metric, evaluate.threshold not a param of stage train"):
        check_selection_tracked(tmp_path, thresholded)
    pipeline = project_pipeline("binary")
    pipeline["stages"]["train"]["params"] += ["sweep", "evaluate.threshold"]
    (tmp_path / "dvc.yaml").write_text(yaml.safe_dump(pipeline))
    check_selection_tracked(tmp_path, thresholded)
