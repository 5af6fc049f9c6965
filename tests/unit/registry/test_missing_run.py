"""A registry writer can register a version that names any run id. A version whose training run is not in the
tracking store is refused in one line (ModelRefused, so the gate and the service treat it as an unloadable
model), never a traceback from MLflow's store. The run that proves it is there is the run a load reads its
tags from: the store is asked for it once per load."""

from __future__ import annotations

import json
from collections import Counter

import mlflow
import pytest
from sklearn.dummy import DummyClassifier

from mlpipe.errors import ModelRefused, Refused
from mlpipe.model.artifact import MODEL_FILE, dump_model
from mlpipe.model.loading import MANIFEST_FILE
from mlpipe.registry import tags as tag
from mlpipe.registry.models import load_registered
from mlpipe.registry.refs import resolve_run
from mlpipe.registry.tracking import MODEL_ARTIFACTS


class CountingClient(mlflow.MlflowClient):
    """An MlflowClient that counts its reads of runs and versions (the store itself is real)."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.reads: Counter = Counter()

    def get_run(self, run_id):
        self.reads["get_run"] += 1
        return super().get_run(run_id)

    def get_model_version(self, name, version):
        self.reads["get_model_version"] += 1
        return super().get_model_version(name, version)


@pytest.fixture
def client(tmp_path):
    return CountingClient(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}")


def test_a_version_naming_a_run_that_is_not_there_is_refused_in_one_line(client):
    client.create_registered_model("m")
    ghost = "7fbe941bb8a44b8b9269451087a042a3"
    client.create_model_version("m", f"runs:/{ghost}/mlpipe/model", run_id=ghost)
    with pytest.raises(Refused) as refused:
        resolve_run(client, "models:/m/1")
    assert ghost in str(refused.value) and "\n" not in str(refused.value)
    with pytest.raises(ModelRefused, match="not in the tracking store"):
        load_registered(client, "models:/m/1")


def test_a_version_whose_run_is_there_resolves_to_it(client):
    experiment = client.create_experiment("e")
    run = client.create_run(experiment)
    client.create_registered_model("m")
    client.create_model_version("m", f"runs:/{run.info.run_id}/x", run_id=run.info.run_id)
    resolved = resolve_run(client, "models:/m/1")
    assert resolved.run_id == run.info.run_id and resolved.source == f"runs:/{run.info.run_id}/x"


def test_a_load_reads_the_run_and_the_version_once(client, tmp_path):
    experiment = client.create_experiment("e", artifact_location=(tmp_path / "artifacts").as_uri())
    model_dir = tmp_path / "model"
    sha256 = dump_model(DummyClassifier().fit([[0], [1]], [0, 1]), model_dir / MODEL_FILE)
    (model_dir / MANIFEST_FILE).write_text(json.dumps({"model_sha256": sha256, "model_file": MODEL_FILE}))
    run_id = client.create_run(experiment, tags={tag.MODEL_SHA256: sha256}).info.run_id
    client.log_artifacts(run_id, str(model_dir), MODEL_ARTIFACTS)
    client.create_registered_model("m")
    client.create_model_version("m", f"runs:/{run_id}/{MODEL_ARTIFACTS}", run_id=run_id)
    client.reads.clear()
    loaded, resolved = load_registered(client, "models:/m/1")
    assert loaded.sha256 == sha256 and resolved.run_id == run_id
    assert client.reads == {"get_run": 1, "get_model_version": 1}
    client.reads.clear()
    load_registered(client, run_id)
    assert client.reads == {"get_run": 1}
