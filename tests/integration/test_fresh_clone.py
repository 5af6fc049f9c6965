"""The README's promise on the project itself: a fresh clone of the committed tree (no data, no DVC
cache or remote, no MLflow store), `mlpipe run`, and the committed data.dvc and dvc.lock still hold:
dvc.lock records the md5 of every stage output (split parts, model bytes, predictions, metrics), so
an unchanged tree means the same data, model and predictions as the commit."""

from __future__ import annotations

import json

import pytest
from conftest import REPO, git, mlpipe, sh

pytestmark = pytest.mark.integration


def test_main_job_on_a_fresh_clone_reproduces_the_committed_hashes(tmp_path):
    clone = tmp_path / "clone"
    sh(["git", "clone", "-q", str(REPO), str(clone)], tmp_path)
    committed_metrics = json.loads((clone / "metrics.json").read_text())
    head = git(clone, "rev-parse", "HEAD")
    proc = mlpipe(clone, "run")
    assert "stages run:    validate, split, train, evaluate" in proc.stdout
    assert git(clone, "status", "--porcelain") == "" and git(clone, "rev-parse", "HEAD") == head, (
        "a fresh run changed committed files: data.dvc/dvc.lock are stale or the pipeline "
        "is not deterministic\n" + sh(["git", "diff", "--stat"], clone).stdout
    )
    assert json.loads((clone / "metrics.json").read_text()) == committed_metrics
    assert f"git commit:    {head}" in proc.stdout and "dirty" not in proc.stdout
