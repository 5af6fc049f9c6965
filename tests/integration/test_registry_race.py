"""Registry moves are serialized and checked against what was judged (issue 28, finding 4): `mlpipe
rollback` while a gate holds the model's registry lock waits, then refuses in one line, moving nothing; a
gate whose champion was rolled back while it judged keeps that champion and says so, instead of promoting on
a stale view. Real MLflow registry of the first run's project, real file lock. (A rollback that goes through:
test_gate.py; one that waits for the holder and then moves: tests/unit/registry/test_registry_lock.py.)"""

from __future__ import annotations

import os
import time

import pytest
from conftest import mlpipe, tracking_client

from mlpipe.config import ProjectPaths, load_params
from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import CHAMPION, PREVIOUS, alias_version, move_champion, registry_lock
from mlpipe.registry.models import rollback_champion
from mlpipe.release.gate import run_gate

pytestmark = pytest.mark.integration
MODEL = "flights-late"


@pytest.fixture
def client(project_copy, monkeypatch):
    """The project's registry. MLflow resolves a `models:/m-...` source with a client of the global URI."""
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project_copy / 'mlruns' / 'mlflow.db'}")
    return tracking_client(project_copy)


def copies_of_version_1(client, n: int) -> None:
    """Versions 2..n+1: the first run's model registered again (same run, same bytes), then champion 2 with
    previous 1, as after a promotion."""
    v1 = client.get_model_version(MODEL, "1")
    for _ in range(n):
        client.create_model_version(MODEL, v1.source, v1.run_id, model_id=v1.source.removeprefix("models:/"))
    move_champion(client, MODEL, "2")


def test_a_rollback_while_a_gate_moves_the_champion_waits_then_refuses_in_one_line(project_copy, client):
    copies_of_version_1(client, 1)
    with registry_lock(project_copy, MODEL, "a run's gate promoting version 5"):
        t0 = time.monotonic()
        refused = mlpipe(project_copy, "rollback", "--wait", "1", "--reason", "latency", check=False)
        took = time.monotonic() - t0
        assert alias_version(client, MODEL, CHAMPION) == "2", (
            "the rollback moved while the gate held the lock"
        )
    message = refused.stderr.strip()
    assert refused.returncode == 1 and "\n" not in message and took >= 1, refused
    assert f"still busy after 1s (pid {os.getpid()}: a run's gate promoting version 5)" in message
    assert "try again when it ends (rule: one alias move at a time per model" in message
    assert alias_version(client, MODEL, PREVIOUS) == "1"


def test_a_gate_whose_champion_was_rolled_back_while_it_judged_keeps_it_and_says_so(project_copy, client):
    copies_of_version_1(client, 2)  # version 3 is judged against champion 2; it passes every criterion
    paths, params = ProjectPaths(project_copy), load_params(project_copy / "params.yaml")
    uri = f"sqlite:///{paths.mlruns / 'mlflow.db'}"
    run_id = client.get_model_version(MODEL, "3").run_id

    def rollback_meanwhile() -> None:
        """The gate asks for its early probe after reading the champion, while it judges: a person rolls
        back right then (and there is no early probe: the gate measures itself)."""
        rollback_champion(project_copy, client, MODEL, "rolled back while version 3 was judged")

    sha256 = tag.read(client.get_run(run_id).data.tags, tag.MODEL_SHA256)
    d = run_gate(paths, params, uri, run_id, "3", sha256, early=rollback_meanwhile)
    assert d.failed == [] and (d.champion_before, d.champion) == ("2", "1"), d.decision
    assert d.decision.startswith("kept champion: the champion moved from 2 to 1 while version 3 was judged")
    assert alias_version(client, MODEL, CHAMPION) == "1", "the gate promoted on a stale view"
    assert client.get_model_version(MODEL, "3").tags[tag.GATE_DECISION] == d.decision
    assert d.decision in client.get_model_version(MODEL, "3").description
