"""The environment is part of a model's identity (issue 15.3). A history whose later commit changes a
locked version that changes the model bytes (scikit-learn records its version inside the model): the
first model, trained in its commit's environment (scikit-learn 1.9.0), reproduces IDENTICAL from the
later checkout running 1.9.1, because reproduce reruns the stages in the commit's own locked
environment; forced into today's environment (`--env current`) it says which packages differ and NOT
IDENTICAL. Every environment is built offline, from uv's cache (`make test` fills it)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, commit_all, git, mlpipe, sh, tool_env, tracking_client

from mlpipe.registry import tags as tag
from mlpipe.runtime.environments import ENV_CACHE, find_uv, locked_environment, locked_packages

pytestmark = [pytest.mark.integration, pytest.mark.slow]
MODEL = "flights-late"
EARLIER = REPO / "tests" / "fixtures" / "scikit-learn-1.9.0.lock.toml"


def with_package(lock: str, entry: str) -> str:
    """`lock` with the [[package]] entry of the same name replaced by `entry` (a uv.lock fragment)."""
    body = entry.split("[[package]]\n", 1)[1]
    name = body.splitlines()[0]
    blocks = lock.split("\n[[package]]\n")
    swapped = [body.rstrip("\n") + "\n" if b.startswith(name + "\n") else b for b in blocks]
    assert swapped != blocks, name
    return "\n[[package]]\n".join(swapped)


def run_in(python: Path, root: Path, *args: str) -> subprocess.CompletedProcess:
    """`mlpipe` under another interpreter, the project's code first on the import path (as reproduce runs
    a commit's stages: the environment holds the locked packages, not the project)."""
    env = tool_env({"PYTHONPATH": os.pathsep.join([str(root / "src"), str(REPO)])})
    env.pop("MLFLOW_TRACKING_URI", None)
    env["PATH"] = str(python.parent) + os.pathsep + env["PATH"]
    proc = subprocess.run(
        [str(python), "-m", "mlpipe.cli", *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("UV_OFFLINE", "1")


def test_the_first_model_reproduces_in_its_own_locked_environment(template_repo, tmp_path, offline):
    root = tmp_path / "project"
    sh(["git", "clone", "-q", str(template_repo), str(root)], tmp_path)
    for key in ("user.email", "user.name"):
        git(root, "config", key, git(template_repo, "config", key))
    shutil.copy2(REPO / "pyproject.toml", root / "pyproject.toml")
    today = (root / "uv.lock").read_text()
    (root / "uv.lock").write_text(with_package(today, EARLIER.read_text()))
    assert locked_packages((root / "uv.lock").read_text())["scikit-learn"] == "1.9.0"
    commit_all(root, "scikit-learn 1.9.0")

    # that commit's environment, as `make setup` of it would be (built once, offline)
    python, reused = locked_environment(root, root / ENV_CACHE, "3.11", find_uv(REPO))
    assert not reused
    run_in(python, root, "run")
    client = tracking_client(root)
    first = client.get_run(client.get_model_version(MODEL, "1").run_id).data.tags
    assert first["mlpipe.version.scikit-learn"] == "1.9.0"

    # the later commit: the project's own lock (1.9.1), trained in the running environment
    (root / "uv.lock").write_text(today)
    commit_all(root, "scikit-learn 1.9.1")
    second = mlpipe(root, "run")
    assert "train" in second.stdout.split("stages run:")[1].splitlines()[0], second.stdout
    tags = tracking_client(root).get_run(tracking_client(root).get_model_version(MODEL, "2").run_id).data.tags
    assert tags["mlpipe.version.scikit-learn"] == "1.9.1"
    assert tags[tag.MODEL_SHA256] != first[tag.MODEL_SHA256], "the version is in the model bytes"

    proc = mlpipe(root, "reproduce", f"models:/{MODEL}/1", "--json")
    verdict = json.loads(proc.stdout[proc.stdout.index("{") :])
    assert verdict["identical"], verdict["different"]
    assert verdict["model_sha256"]["reproduced"] == first[tag.MODEL_SHA256]
    assert "the commit's locked environment" in verdict["environment"]
    assert "reused" in verdict["environment"], "the environment is cached by the lock's hash"
    assert "scikit-learn 1.9.0 (locked) vs 1.9.1 (running)" in verdict["environment"]

    forced = mlpipe(root, "reproduce", f"models:/{MODEL}/1", "--env", "current", check=False)
    assert forced.returncode == 4, forced.stderr[-2000:]
    assert "verdict: NOT IDENTICAL" in forced.stdout and "model_sha256" in forced.stdout.splitlines()[-2]
    environment = next(line for line in forced.stdout.splitlines() if line.startswith("environment:"))
    assert f"the running environment ({Path(sys.executable).parents[1]})" in environment, environment
    assert "scikit-learn 1.9.0 (locked) vs 1.9.1 (running)" in environment, environment
