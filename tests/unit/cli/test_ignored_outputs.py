"""Every tool output of a project is invisible to git: the repository's own .gitignore and the one
`mlpipe init` writes for a new project both hide what the tools write (DVC, MLflow, Prefect, mlpipe)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from mlpipe.pipeline.scaffold import GITIGNORE

REPO = Path(__file__).resolve().parents[3]
# What the tools write into a project, one file each: DVC (plots page, cache store, tracked data), MLflow
# (store, a server's default artifact folder), Prefect (home), mlpipe (logs, spool, locks, browser check).
TOOL_OUTPUTS = [
    "dvc_plots/index.html",
    "dvc_plots/static/workspace_artifacts_evaluate_plots_roc.png",
    ".dvcstore/files/md5/ab/cdef",
    "data/flights.parquet",
    "artifacts/evaluate/metrics.json",
    "landing/batch-2013-04.csv",
    "quarantine/batch-2013-04.csv",
    "mlruns/mlflow.db",
    "mlruns/artifacts/1/model.skops",
    "mlflow.db",
    "mlartifacts/1/model.skops",
    ".prefect/prefect.db",
    ".mlpipe/serve-8000.log",
    ".mlpipe/spool/segment-1.jsonl",
    ".mlpipe.lock",
    ".mlpipe/registry-flights-late.lock",
    ".ui-check/mlflow-run.png",
]


def _git(root: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True, check=True).stdout


@pytest.mark.parametrize(
    "ignore", [(REPO / ".gitignore").read_text(), GITIGNORE], ids=["repository", "mlpipe-init"]
)
def test_git_sees_none_of_the_tools_outputs(tmp_path, ignore):
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text(ignore)
    for name in TOOL_OUTPUTS:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("x")
    assert _git(tmp_path, "status", "--porcelain", "--untracked-files=all") == "?? .gitignore\n"
