"""An interrupted run is completed by the next one: the files it writes and commits itself are put back as
HEAD has them when they are the only uncommitted changes; a user's edits, or a live run, are left alone."""

from __future__ import annotations

import json
import os
import subprocess
import time

import pytest

from mlpipe.errors import DirtyTree
from mlpipe.runtime.git import require_clean_tree
from mlpipe.runtime.lock import project_lock
from mlpipe.runtime.run_marker import (
    MARKER,
    RunMarker,
    clear_run_marker,
    mark_run_writing,
    read_marker,
    restore_interrupted_run,
    run_leftovers,
)

OWNED = ["data.dvc", "dvc.lock", "metrics.json"]


def _git(root, *args) -> str:
    return subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args],
        cwd=root,
        check=True,
        capture_output=True,
        text=True,
    ).stdout


@pytest.fixture
def project(tmp_path):
    """A committed project with the run's files; .mlpipe/ and the lock are ignored, as in a real one."""
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text(".mlpipe/\n/.mlpipe.lock\n")
    for name, text in {"params.yaml": "seed: 1\n", "data.dvc": "md5: a\n", "dvc.lock": "v1\n"}.items():
        (tmp_path / name).write_text(text)
    (tmp_path / "metrics.json").write_text('{"auc": 0.6}\n')
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "first")
    return tmp_path


def _restore(root):
    return restore_interrupted_run(root, root / ".mlpipe.lock")


def test_the_files_an_interrupted_run_left_are_put_back_and_the_marker_goes(project):
    mark_run_writing(project, OWNED)
    (project / "dvc.lock").write_text("v2, half done\n")
    (project / "metrics.json").unlink()  # DVC removes a stage's outputs before it runs it
    line = _restore(project)
    assert line is not None and "left dvc.lock, metrics.json uncommitted: put back as HEAD" in line
    assert f"pid {os.getpid()}" in line and "\n" not in line
    assert _git(project, "status", "--porcelain") == ""
    assert (project / "dvc.lock").read_text() == "v1\n" and (project / "metrics.json").exists()
    assert not (project / MARKER).exists()
    require_clean_tree(project)


def test_a_file_the_interrupted_run_created_is_removed(project):
    _git(project, "rm", "-q", "metrics.json")
    _git(project, "commit", "-qm", "no metrics yet")
    mark_run_writing(project, OWNED)
    (project / "metrics.json").write_text("{}\n")  # a first run's, never committed
    assert "metrics.json" in _restore(project)
    assert not (project / "metrics.json").exists() and _git(project, "status", "--porcelain") == ""


def test_a_first_run_interrupted_before_its_data_commit_leaves_no_data_behind(project):
    _git(project, "rm", "-q", "--cached", "data.dvc")
    _git(project, "commit", "-qm", "no data yet")
    (project / ".gitignore").write_text(".mlpipe/\n/.mlpipe.lock\n/data\n")
    _git(project, "commit", "-qam", "ignore data")
    mark_run_writing(project, OWNED)
    (project / "data").mkdir()
    (project / "data" / "batch-2013-01-01.parquet").write_text("half of the initial period")
    assert "left data.dvc, data/ uncommitted" in _restore(project)  # data.dvc: written by `dvc add`
    assert not (project / "data").exists() and not (project / "data.dvc").exists()
    mark_run_writing(project, OWNED)
    (project / "data").mkdir()  # killed while materialising, before `dvc add`: nothing uncommitted
    assert "left data/ uncommitted" in _restore(project) and not (project / "data").exists()


def test_a_users_edit_beside_them_still_refuses_and_the_marker_stays(project):
    mark_run_writing(project, OWNED)
    (project / "dvc.lock").write_text("v2\n")
    (project / "params.yaml").write_text("seed: 2\n")
    assert _restore(project) is None
    assert (project / "dvc.lock").read_text() == "v2\n", "nothing is touched"
    assert (project / MARKER).exists()
    with pytest.raises(DirtyTree, match="2 uncommitted path"):
        require_clean_tree(project)
    (project / "params.yaml").write_text("seed: 1\n")  # the user puts their edit away: now it is the run's
    assert "dvc.lock" in _restore(project)


def test_without_a_marker_changed_files_are_a_users_and_refuse(project):
    (project / "dvc.lock").write_text("v2 by a hand-run dvc repro\n")
    assert _restore(project) is None
    assert (project / "dvc.lock").read_text() == "v2 by a hand-run dvc repro\n"


def test_a_run_that_holds_the_project_lock_keeps_its_files(project):
    mark_run_writing(project, OWNED)
    (project / "dvc.lock").write_text("v2, being written\n")
    with project_lock(project / ".mlpipe.lock", timeout_s=0):  # the live run
        assert _restore(project) is None
    assert (project / "dvc.lock").read_text() == "v2, being written\n"
    assert (project / MARKER).exists()


def test_an_interrupted_run_that_changed_nothing_only_leaves_its_marker_which_goes_silently(project):
    mark_run_writing(project, OWNED)
    assert _restore(project) is None and not (project / MARKER).exists()


def test_the_marker_names_head_and_the_files_and_goes_once_they_are_committed(project):
    mark_run_writing(project, OWNED)
    marker = read_marker(project)
    assert marker.head == _git(project, "rev-parse", "HEAD").strip()
    assert marker.paths == tuple(OWNED) and marker.pid == os.getpid()
    (project / "dvc.lock").write_text("v2\n")
    assert clear_run_marker(project) is False, "kept while dvc.lock is uncommitted"
    _git(project, "commit", "-qam", "pipeline: outputs")
    assert clear_run_marker(project) is True and read_marker(project) is None


def test_an_unreadable_marker_is_none():
    assert read_marker(__import__("pathlib").Path("/nonexistent")) is None


def test_only_changes_among_the_runs_files_are_its_leftovers():
    marker = RunMarker("abc", tuple(OWNED), 1, "h", 0.0)
    assert run_leftovers(marker, {"metrics.json", "dvc.lock"}) == ["dvc.lock", "metrics.json"]
    assert run_leftovers(marker, set()) == []
    assert run_leftovers(marker, {"dvc.lock", "params.yaml"}) is None


def test_a_git_index_lock_the_killed_run_left_is_removed_a_fresh_one_is_not(project):
    mark_run_writing(project, OWNED)
    (project / "dvc.lock").write_text("v2\n")
    index_lock = project / ".git" / "index.lock"
    index_lock.write_text("")
    assert _restore(project) is None, "a lock seconds old may be a live git's: kept, and git refuses"
    assert index_lock.exists() and (project / MARKER).exists()
    old = time.time() - 60
    os.utime(index_lock, (old, old))
    marker = json.loads((project / MARKER).read_text())
    (project / MARKER).write_text(json.dumps(marker | {"started": old - 1}))
    assert "dvc.lock" in _restore(project)
    assert not index_lock.exists() and _git(project, "status", "--porcelain") == ""
