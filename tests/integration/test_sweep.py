"""`mlpipe sweep` for real: a 2x2 grid on a local Dask cluster of two worker processes, one parent MLflow
run with a child run per candidate, the winner written to params.yaml, committed, trained through the
pipeline (DVC) and rebuilt byte for byte from commit + data hash; the same scores in a plain process;
an existing Dask scheduler taking the candidates; a sweep refused while batches wait to be ingested."""

from __future__ import annotations

import json

import pytest
import yaml
from conftest import commit_all, copy_project, edit_params, git, mlpipe, tracking_client

from mlpipe.config import ProjectPaths, load_params
from mlpipe.pipeline.sweep import (
    candidate_seed,
    candidate_train_cfg,
    expand_grid,
    read_verified_train,
    score_candidate,
    training_frames,
)
from mlpipe.registry import tags as tag

pytestmark = pytest.mark.integration
MODEL = "flights-late"
GRID = {"learning_rate": [0.05, 0.2], "max_leaf_nodes": [7, 15]}  # none is the slice's current value


def with_grid(root, grid: dict, workers: int = 2) -> None:
    edit_params(
        root, sweep={"grid": grid, "metric": "roc_auc", "validation_fraction": 0.2, "workers": workers}
    )
    commit_all(root, f"sweep grid {grid}")


@pytest.fixture(scope="module")
def swept(first_run, tmp_path_factory):
    root = copy_project(first_run[0], tmp_path_factory.mktemp("sweep") / "project")
    with_grid(root, GRID)
    before = git(root, "rev-parse", "HEAD")
    proc = mlpipe(root, "sweep", "--json")
    return root, json.loads(proc.stdout), before


def children_of(client, parent) -> list:
    runs = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`mlflow.parentRunId` = '{parent.info.run_id}'"
    )
    return sorted(runs, key=lambda r: int(r.data.tags["mlpipe.sweep.index"]))


def test_each_candidate_is_a_child_run_of_one_sweep_run_scored_on_two_dask_workers(swept):
    root, s, before = swept
    client = tracking_client(root)
    parent = client.get_run(s["run_id"])
    assert parent.info.status == "FINISHED" and parent.data.tags["mlpipe.kind"] == "sweep"
    assert json.loads(parent.data.params["sweep.grid"]) == GRID and parent.data.params["sweep.workers"] == "2"
    assert parent.data.tags[tag.GIT_COMMIT] == before
    children = children_of(client, parent)
    assert len(children) == 4 and all(
        c.info.status == "FINISHED" and c.data.tags["mlpipe.kind"] == "sweep-candidate" for c in children
    )
    assert (
        len({c.data.tags["mlpipe.sweep.worker"] for c in children}) == 2
    )  # both worker processes took candidates
    assert [
        (
            float(c.data.params["train.hyperparams.learning_rate"]),
            int(c.data.params["train.hyperparams.max_leaf_nodes"]),
        )
        for c in children
    ] == [(0.05, 7), (0.05, 15), (0.2, 7), (0.2, 15)]
    scores = [c.data.metrics["val_roc_auc"] for c in children]
    # every candidate's metric on the parent too, one step per candidate
    assert [
        m.value
        for m in sorted(client.get_metric_history(parent.info.run_id, "val_roc_auc"), key=lambda m: m.step)
    ] == scores
    best = scores.index(max(scores))
    assert s["winner"] == best and parent.data.tags["mlpipe.sweep.winner_run"] == children[best].info.run_id
    assert (
        json.loads(parent.data.tags["mlpipe.sweep.winner"])
        == s["winner_hyperparams"]
        == {
            "learning_rate": GRID["learning_rate"][best // 2],
            "max_leaf_nodes": GRID["max_leaf_nodes"][best % 2],
        }
    )
    assert {a.path for a in client.list_artifacts(parent.info.run_id, "sweep")} == {"sweep/candidates.json"}
    # scored on a part of the train split only: fit + validation rows are the train split's rows
    split = json.loads((root / "artifacts/split/split.json").read_text())
    assert (
        parent.data.metrics["rows_fit"] + parent.data.metrics["rows_validation"]
        == split["parts"]["train"]["rows"]
    )


def test_the_winner_is_committed_to_params_yaml_and_trained_through_the_pipeline(swept):
    root, s, before = swept
    winner = s["winner_hyperparams"]
    hyper = load_params(root / "params.yaml").train.hyperparams
    assert {k: hyper[k] for k in winner} == winner and hyper["max_iter"] == 40
    # the sweep's commit changes params.yaml only; the pipeline then commits its outputs;
    # nothing is left dirty
    assert git(root, "diff", "--name-only", before, s["commit"]) == "params.yaml"
    assert git(root, "log", "-1", "--format=%s", s["commit"]).startswith("sweep: train.hyperparams")
    assert git(root, "status", "--porcelain") == ""
    p = s["pipeline"]
    assert "train" in p["stages_run"] and p["git_dirty"] is False
    client = tracking_client(root)
    run = client.get_run(p["run_id"])
    assert run.data.tags["mlpipe.sweep"] == s["run_id"] and run.data.tags[tag.GIT_COMMIT] == p["commit"]
    assert {k: run.data.params[f"train.hyperparams.{k}"] for k in winner} == {
        k: str(v) for k, v in winner.items()
    }
    assert client.get_run(s["run_id"]).data.tags["mlpipe.sweep.pipeline_run"] == p["run_id"]
    version = client.get_model_version(MODEL, p["model_version"])
    assert version.run_id == p["run_id"] and version.tags[tag.MODEL_SHA256] == p["model_sha256"]


def test_the_dask_scores_are_a_plain_process_scores_so_the_winner_is_reproducible(swept):
    root, s, _ = swept
    paths = ProjectPaths(root)
    params = load_params(root / "params.yaml")
    frames = training_frames(read_verified_train(paths)[0], params, params.sweep.validation_fraction)
    for row, hp in zip(s["candidates"], expand_grid(params.train.hyperparams, GRID), strict=True):
        scored = score_candidate(
            candidate_train_cfg(params.train, hp),
            params.features,
            frames["X_fit"],
            frames["y_fit"],
            frames["X_val"],
            frames["y_val"],
            candidate_seed(params),
            params.evaluate.threshold,
            params.task,
        )
        assert scored["metrics"]["roc_auc"] == row["val_roc_auc"]


def test_the_winning_model_is_rebuilt_byte_for_byte_from_commit_and_data_hash(swept):
    root, s, _ = swept
    v = json.loads(mlpipe(root, "reproduce", s["pipeline"]["run_id"], "--json").stdout)
    assert v["identical"] is True and v["predictions_identical"] is True
    assert v["model_sha256"]["original"] == v["model_sha256"]["reproduced"] == s["pipeline"]["model_sha256"]


def test_an_existing_dask_scheduler_takes_the_candidates_and_no_apply_changes_nothing(project_copy):
    import distributed

    root = project_copy
    with_grid(root, {"learning_rate": [0.05, 0.2]}, workers=1)
    head, params_text = git(root, "rev-parse", "HEAD"), (root / "params.yaml").read_text()
    versions = len(tracking_client(root).search_model_versions(f"name = '{MODEL}'"))
    with distributed.LocalCluster(
        n_workers=1, threads_per_worker=1, processes=True, host="127.0.0.1", dashboard_address=None
    ) as cluster:
        s = json.loads(
            mlpipe(root, "sweep", "--dask-address", cluster.scheduler_address, "--no-apply", "--json").stdout
        )
    assert s["dask"] == cluster.scheduler_address and s["workers"] is None and s["pipeline"] is None
    client = tracking_client(root)
    assert len(children_of(client, client.get_run(s["run_id"]))) == 2
    assert (root / "params.yaml").read_text() == params_text and git(root, "rev-parse", "HEAD") == head
    assert len(client.search_model_versions(f"name = '{MODEL}'")) == versions


def test_a_sweep_is_refused_while_batches_wait_to_be_ingested(project_copy):
    root = project_copy
    mlpipe(root, "simulate", "--next")
    runs = len(
        tracking_client(root).search_runs(
            [tracking_client(root).get_experiment_by_name("mlpipe").experiment_id]
        )
    )
    proc = mlpipe(root, "sweep", check=False)
    assert (
        proc.returncode == 1 and "wait in landing/" in proc.stderr and "run `mlpipe run` first" in proc.stderr
    )
    assert yaml.safe_load((root / "params.yaml").read_text()) == yaml.safe_load(
        git(root, "show", "HEAD:params.yaml")
    )
    assert (
        len(
            tracking_client(root).search_runs(
                [tracking_client(root).get_experiment_by_name("mlpipe").experiment_id]
            )
        )
        == runs
    )
