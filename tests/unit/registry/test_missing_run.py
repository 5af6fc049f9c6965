"""A registry writer can register a version that names any run id. A version whose training run is not in the
tracking store is refused in one line (ModelRefused, so the gate and the service treat it as an unloadable
model), never a traceback from MLflow's store."""

from __future__ import annotations

import pytest

from mlpipe.errors import ModelRefused, Refused
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.models import load_registered
from mlpipe.registry.refs import resolve_run_id


@pytest.fixture
def client(tmp_path):
    return mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_a_version_naming_a_run_that_is_not_there_is_refused_in_one_line(client):
    client.create_registered_model("m")
    ghost = "7fbe941bb8a44b8b9269451087a042a3"
    client.create_model_version("m", f"runs:/{ghost}/mlpipe/model", run_id=ghost)
    with pytest.raises(Refused) as refused:
        resolve_run_id(client, "models:/m/1")
    assert ghost in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(ModelRefused, match="not in the tracking store"):
        load_registered(client, "models:/m/1")


def test_a_version_whose_run_is_there_resolves_to_it(client):
    experiment = client.create_experiment("e")
    run = client.create_run(experiment)
    client.create_registered_model("m")
    client.create_model_version("m", f"runs:/{run.info.run_id}/x", run_id=run.info.run_id)
    assert resolve_run_id(client, "models:/m/1") == run.info.run_id
