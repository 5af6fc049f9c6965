"""A champion that fails its checks is an incident, not a wall: the next retrain judges the challenger
without it (recorded, alerted) instead of failing; rollback refuses to reinstate a tampered version;
reproduce of a tampered model keeps to its documented exit code (2). The project has its own MLflow
store (a clone of the template, not a copy of the shared first run), so tampering touches no other test."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
import yaml
from conftest import (
    commit_all,
    edit_params,
    free_port,
    git,
    mlpipe,
    registered_model_file,
    sh,
    start_server,
    stop,
    tracking_client,
)

pytestmark = pytest.mark.integration
MODEL = "flights-late"


def test_a_tampered_champion_is_judged_absent_refused_by_rollback_and_by_reproduce(template_repo, tmp_path):
    root = tmp_path / "project"
    sh(["git", "clone", "-q", str(template_repo), str(root)], tmp_path)
    for key in ("user.email", "user.name"):
        git(root, "config", key, git(template_repo, "config", key))
    mlpipe(root, "run")
    client = tracking_client(root)
    v1 = client.get_model_version(MODEL, "1")
    artifact = registered_model_file(client, MODEL, v1.version)
    assert str(artifact).startswith(str(root)), artifact  # this project's own store
    raw = bytearray(artifact.read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    artifact.write_bytes(bytes(raw))

    hyper = yaml.safe_load((root / "params.yaml").read_text())["train"]["hyperparams"]
    edit_params(root, train={"hyperparams": {**hyper, "max_iter": 45}})
    commit_all(root, "train: 45 rounds")
    run = mlpipe(root, "run", check=False)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "gate:          promoted; champion is version 2" in run.stdout, run.stdout
    client = tracking_client(root)
    tags = client.get_run(client.get_model_version(MODEL, "2").run_id).data.tags  # every criterion's line
    assert "ALERT: the champion fails its checks" in tags["mlpipe.gate.champion.loadable"]
    assert "sha256" in tags["mlpipe.gate.champion.loadable"]
    assert "champion_unloadable" in run.stderr

    rollback = mlpipe(root, "rollback", "--reason", "try the old one", check=False)
    assert rollback.returncode == 1 and "fails its checks, not made champion" in rollback.stderr
    assert str(tracking_client(root).get_model_version_by_alias(MODEL, "champion").version) == "2"

    proc = mlpipe(root, "reproduce", f"models:/{MODEL}/1", check=False)
    assert proc.returncode == 2, (proc.returncode, proc.stderr[-1500:])
    assert "fails its checks" in proc.stderr.strip().splitlines()[-1]

    # the run's own files are checked too: the service builds its request rules from the profile
    v2 = tracking_client(root).get_model_version(MODEL, "2")
    profile = Path(client.get_run(v2.run_id).info.artifact_uri.removeprefix("file://")) / (
        "mlpipe/validate/profile.json"
    )
    profile.write_text(profile.read_text() + "\n")  # still valid JSON, not the trained bytes
    # asked for by name, it is refused before the service starts (one line, exit 2) ...
    named = mlpipe(root, "serve", "--model", f"models:/{MODEL}/2", "--port", str(free_port()), check=False)
    assert named.returncode == 2 and "\n" not in named.stderr.strip(), named.stderr[-1500:]
    assert "profile.json: md5" in named.stderr and "recorded at training" in named.stderr, named.stderr
    # ... and as the champion the service watches, it is not served and /ready says why
    base, server = start_server(root, wait_ready=False)
    try:
        reason = httpx.get(f"{base}/ready").json()["reason"]
        assert "mlpipe/validate/profile.json: md5" in reason and "recorded at training" in reason, reason
    finally:
        stop(server)
