"""The MLflow run table opens with the task's headline metrics as columns: mlpipe saves a view of it on
the experiment (the tag MLflow 3.17's UI reads for `viewStateShareKey` and lists under "Views"), and the
links it prints open that view."""

from __future__ import annotations

import json

import pytest

from mlpipe.registry import tags as tag
from mlpipe.registry import views
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.tracking import ensure_experiment

VIEW_TAG = f"{tag.MLFLOW_SAVED_VIEW_PREFIX}{views.RUN_TABLE_VIEW}"


@pytest.mark.parametrize(
    ("task", "metrics"),
    [
        ("binary", ["roc_auc", "average_precision", "log_loss"]),
        ("multiclass", ["accuracy", "balanced_accuracy", "f1_macro"]),
        ("regression", ["rmse", "mae", "r2"]),
    ],
)
def test_the_view_shows_the_tasks_headline_metrics_after_the_run_name_and_date(task, metrics):
    state = views.run_table_state(task)
    columns = [f"metrics.`{m}`" for m in metrics]
    shown = state["selectedColumns"][len(views.DEFAULT_COLUMNS) :]
    assert state["selectedColumns"][: len(views.DEFAULT_COLUMNS)] == list(views.DEFAULT_COLUMNS)
    assert shown[2:5] == columns  # after the gate's decision and the champion marker
    assert state["columnOrder"] == ["attributes.`Run Name`", "runDateAndNestInfo", *shown]


def test_the_saved_view_is_the_envelope_the_ui_parses():
    # MLflow 3.17 (module 53787 of its UI bundle): name a string, createdAt a number, state a string of JSON
    value = json.loads(views.saved_view(views.run_table_state("binary"), 1_700_000_000_000))
    assert value["name"] == views.RUN_TABLE_VIEW_NAME
    assert isinstance(value["createdAt"], int) and isinstance(value["updatedAt"], int)
    assert json.loads(value["state"]) == views.run_table_state("binary")


def test_the_experiment_gets_the_view_once_and_again_when_the_task_changes(tmp_path):
    client = mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    assert views.start_page(client, "mlpipe") == "#/experiments?workflowType=machine_learning"
    exp = ensure_experiment(client, "mlpipe", tmp_path / "artifacts", "binary")
    first = client.get_experiment(exp).tags[VIEW_TAG]
    assert json.loads(json.loads(first)["state"]) == views.run_table_state("binary")
    assert views.start_page(client, "mlpipe") == (
        f"#/experiments/{exp}/runs?workflowType=machine_learning&viewStateShareKey=mlpipe-headline"
    )
    assert ensure_experiment(client, "mlpipe", tmp_path / "artifacts", "binary") == exp
    assert client.get_experiment(exp).tags[VIEW_TAG] == first  # not rewritten
    ensure_experiment(client, "mlpipe", tmp_path / "artifacts", "regression")
    again = json.loads(client.get_experiment(exp).tags[VIEW_TAG])
    assert json.loads(again["state"]) == views.run_table_state("regression")


def test_an_experiment_made_before_the_view_links_without_it(tmp_path):
    client = mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("mlpipe")
    # a share key the experiment lacks makes the UI show an error and drop to the bare page
    assert views.start_page(client, "mlpipe") == f"#/experiments/{exp}/runs?workflowType=machine_learning"
