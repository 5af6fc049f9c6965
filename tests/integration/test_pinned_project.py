"""Issue 29: a project made by `mlpipe init` pins mlpipe (its wheel, DVC-tracked) and every package (uv.lock),
so each of its models reproduces across mlpipe upgrades, also from a fresh clone with only the DVC remote.

mlpipe A is the one under test; B is a copy of its source with one training default changed and committed,
C the same copy with a further uncommitted change. B and C run with this interpreter, their source first on
the import path (as a checkout of theirs would after `make setup`)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import REPO, git

from mlpipe.runtime.shell import tool_env

pytestmark = [pytest.mark.integration, pytest.mark.slow]

DEFAULT_A = '"LogisticRegression": {"max_iter": 1000},'
DEFAULT_B = '"LogisticRegression": {"max_iter": 1000, "C": 0.5},'
DEFAULT_C = '"LogisticRegression": {"max_iter": 1000, "C": 0.25},'
ESTIMATORS = Path("src/mlpipe/pipeline/estimators.py")


def run(
    root: Path, *args: str, source: Path | None = None, env: dict | None = None
) -> subprocess.CompletedProcess:
    """`mlpipe ARGS` in `root`, with mlpipe A, or the mlpipe of the source tree `source`."""
    extra = {"PYTHONPATH": f"{source / 'src'}{os.pathsep}{source}"} if source else {}
    full = tool_env(extra)
    full.pop("MLFLOW_TRACKING_URI", None)  # the project's own store, unless `env` names one
    full.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "mlpipe.cli", *args],
        cwd=root,
        env=full,
        capture_output=True,
        text=True,
        timeout=900,
    )


def ok(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 0, f"exit {proc.returncode}\nstdout:\n{proc.stdout}\nstderr:\n{proc.stderr}"
    return proc.stdout


def mlpipe_copy(dest: Path) -> Path:
    """mlpipe's source as it is now (uncommitted edits included) in a git repository of its own."""
    for name in ("src",):  # the flows are mlpipe.flows, under src
        shutil.copytree(REPO / name, dest / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("pyproject.toml", "uv.lock", "README.md", ".gitignore"):
        shutil.copy2(REPO / name, dest / name)
    subprocess.run(["git", "init", "-q", "-b", "main"], cwd=dest, check=True)
    git(dest, "add", "-A")
    git(dest, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", "mlpipe A")
    return dest


def edit_default(source: Path, old: str, new: str) -> None:
    path = source / ESTIMATORS
    text = path.read_text()
    assert old in text, f"{ESTIMATORS}: {old} not found (the default this test changes moved)"
    path.write_text(text.replace(old, new))


def first_line(proc: subprocess.CompletedProcess) -> str:
    return proc.stdout.splitlines()[0] if proc.stdout else proc.stderr


def test_models_of_an_init_project_reproduce_across_mlpipe_upgrades_and_from_a_fresh_clone(tmp_path):
    from palmerpenguins import load_penguins

    rows = load_penguins().sample(frac=1, random_state=0).reset_index(drop=True)
    rows.iloc[:300].to_csv(tmp_path / "penguins.csv", index=False)
    rows.iloc[300:].to_csv(tmp_path / "batch.csv", index=False)
    root = tmp_path / "proj"
    init = ok(run(tmp_path, "init", "--data", "penguins.csv", "--target", "species", "--into", "proj"))
    assert "environment: mlpipe 0.1.0 (code " in init, init
    for name in ("pyproject.toml", "uv.lock", "vendor.dvc"):
        assert git(root, "ls-files", name) == name, f"{name} is committed"
    assert "vendor/" not in git(root, "ls-files"), "the wheel itself is DVC's, not git's"
    again = run(tmp_path, "init", "--data", "penguins.csv", "--target", "species", "--into", "proj")
    assert again.returncode != 0 and "already there" in again.stderr and len(again.stderr.splitlines()) == 1

    # mlpipe A trains v1
    assert "trained a new model" in ok(run(root, "run"))

    # mlpipe B: a committed change to a training default. Refused in one line, upgraded, retrained.
    source = mlpipe_copy(tmp_path / "mlpipe-b")
    edit_default(source, DEFAULT_A, DEFAULT_B)
    git(source, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qam", "mlpipe B: C=0.5")
    refused = run(root, "run", source=source)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert re.search(
        r"pins mlpipe 0\.1\.0 \(code \w{12}\), the running mlpipe is 0\.1\.0 \(code \w{12}\)", refused.stderr
    )
    assert "`mlpipe upgrade`" in refused.stderr
    upgraded = ok(run(root, "upgrade", source=source))
    assert "committed" in upgraded and git(root, "status", "--porcelain") == "", upgraded
    second = ok(run(root, "run", source=source))  # no new batch: the changed lock retrains
    assert "trained a new model" in second and "nothing to train" not in second, second
    assert "version 2" in second, second

    # mlpipe C: an uncommitted change on top of B; a new batch this time
    edit_default(source, DEFAULT_B, DEFAULT_C)
    assert run(root, "run", source=source).returncode == 2
    ok(run(root, "upgrade", source=source))
    ok(run(root, "ingest", str(tmp_path / "batch.csv"), source=source))
    third = ok(run(root, "run", source=source))
    assert "trained a new model" in third and "nothing to train" not in third, third
    assert "version 3" in third, third

    # with C running, every version reproduces: v1 and v2 in their commits' locked environments
    for version in ("1", "2", "3"):
        proc = run(root, "reproduce", f"models:/proj-species/{version}", source=source)
        assert proc.returncode == 0 and first_line(proc) == "verdict: IDENTICAL", proc.stdout + proc.stderr
        if version != "3":
            assert "the commit's locked environment" in proc.stdout and "mlpipe 0.1.0 (code" in proc.stdout

    # another machine: a clone with only the DVC remote (the original's cache, data, wheel and envs gone)
    remote = shutil.copytree(root / ".dvcstore", tmp_path / "remote")
    clone = tmp_path / "elsewhere" / "proj"
    subprocess.run(["git", "clone", "-q", str(root), str(clone)], check=True, capture_output=True)
    for gone in (".dvc/cache", ".mlpipe", "vendor", "data", ".dvcstore", "artifacts"):
        shutil.rmtree(root / gone, ignore_errors=True)
    dvc = [str(Path(sys.executable).parent / "dvc")]
    subprocess.run([*dvc, "remote", "modify", "--local", "local", "url", str(remote)], cwd=clone, check=True)
    # the data and the wheel (stage outputs are never pushed: reproduce rebuilds them)
    pulled = subprocess.run(
        [*dvc, "pull", "data.dvc", "vendor.dvc"], cwd=clone, env=tool_env(), capture_output=True, text=True
    )
    assert pulled.returncode == 0 and list((clone / "vendor").glob("mlpipe-*.whl")), pulled.stderr
    record = {
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlruns' / 'mlflow.db'}"
    }  # the run record (team store)
    proc = run(clone, "reproduce", "models:/proj-species/1", source=source, env=record)
    assert proc.returncode == 0 and first_line(proc) == "verdict: IDENTICAL", proc.stdout + proc.stderr
