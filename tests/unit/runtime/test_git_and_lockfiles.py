"""Lineage: which commit, which data hash, which stage outputs and which locked versions made a model."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import yaml

from mlpipe.runtime.git import git_commit, git_dirty
from mlpipe.runtime.lockfiles import dvc_file_md5, locked_versions, stage_output_hashes

UV_LOCK = """\
version = 1
requires-python = ">=3.11, <3.12"

[[package]]
name = "mlpipe"
source = { editable = "." }

[[package]]
name = "numpy"
version = "2.4.1"
source = { registry = "https://pypi.org/simple" }

[[package]]
name = "scikit-learn"
version = "1.9.0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "numpy" }]
"""


def test_data_hash_is_read_from_the_dvc_file(tmp_path):
    dvc_file = tmp_path / "data.dvc"
    dvc_file.write_text(
        yaml.safe_dump(
            {
                "outs": [
                    {
                        "md5": "3f2a9c1d0e5b4a7f8c6d2e1b0a9f8e7d.dir",
                        "size": 1234,
                        "nfiles": 3,
                        "hash": "md5",
                        "path": "data",
                    }
                ]
            }
        )
    )
    assert dvc_file_md5(dvc_file) == "3f2a9c1d0e5b4a7f8c6d2e1b0a9f8e7d.dir"


def test_data_hash_is_none_before_the_data_is_tracked(tmp_path):
    assert dvc_file_md5(tmp_path / "data.dvc") is None


def test_stage_output_hashes_come_from_dvc_lock(tmp_path):
    lock = tmp_path / "dvc.lock"
    lock.write_text(
        yaml.safe_dump(
            {
                "schema": "2.0",
                "stages": {
                    "split": {
                        "cmd": "python -m mlpipe.pipeline.stages.split",
                        "deps": [{"path": "data", "md5": "aaa.dir"}],
                        "outs": [
                            {"path": "artifacts/split/train.parquet", "md5": "111", "size": 10},
                            {"path": "artifacts/split/test.parquet", "md5": "222", "size": 5},
                        ],
                    },
                    "train": {
                        "cmd": "python -m mlpipe.pipeline.stages.train",
                        "outs": [{"path": "artifacts/model", "md5": "333.dir"}],
                    },
                    "report": {"cmd": "true"},
                    "plots": {"cmd": "true", "outs": [{"path": "plots.json"}]},
                },
            }
        )
    )
    assert stage_output_hashes(lock) == {
        "split": {"artifacts/split/train.parquet": "111", "artifacts/split/test.parquet": "222"},
        "train": {"artifacts/model": "333.dir"},
        "report": {},
        "plots": {"plots.json": ""},
    }


def test_missing_or_empty_dvc_lock_means_no_stage_outputs(tmp_path):
    assert stage_output_hashes(tmp_path / "dvc.lock") == {}
    (tmp_path / "dvc.lock").write_text("")
    assert stage_output_hashes(tmp_path / "dvc.lock") == {}


def test_locked_versions_come_from_uv_lock(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text(UV_LOCK)
    assert locked_versions(lock, ["scikit-learn", "numpy"]) == {"scikit-learn": "1.9.0", "numpy": "2.4.1"}
    assert locked_versions(lock, []) == {}


def test_a_requirement_missing_from_the_lock_is_named(tmp_path):
    lock = tmp_path / "uv.lock"
    lock.write_text(UV_LOCK)
    with pytest.raises(KeyError) as info:
        locked_versions(lock, ["numpy", "skops", "mlpipe"])  # mlpipe is in the lock but without a version
    message = str(info.value)
    assert "['skops', 'mlpipe']" in message
    assert "every model requirement comes from the lock" in message


def test_the_projects_own_lock_pins_the_model_packages(params_path):
    lock = params_path.parent / "uv.lock"
    versions = locked_versions(lock, ["scikit-learn", "numpy", "skops"])
    assert all(v[0].isdigit() for v in versions.values())


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        [
            "git",
            "-c",
            "user.name=Test",
            "-c",
            "user.email=test@example.com",
            "-c",
            "commit.gpgsign=false",
            *args,
        ],
        cwd=repo,
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()


@pytest.fixture
def repo(tmp_path, monkeypatch):
    """An empty git repository that git cannot mistake for a part of an enclosing one."""
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    path = tmp_path / "repo"
    path.mkdir()
    _git(path, "init", "-q")
    return path


def test_outside_a_git_repository_there_is_no_commit_and_the_state_is_dirty(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path.parent))
    assert git_commit(tmp_path) is None
    assert git_dirty(tmp_path) is True


def test_before_the_first_commit_there_is_no_commit(repo):
    assert git_commit(repo) is None
    assert git_dirty(repo) is False
    (repo / "params.yaml").write_text("seed: 1\n")
    assert git_dirty(repo) is True  # untracked file


def test_commit_is_heads_id_and_a_clean_tree_is_not_dirty(repo):
    (repo / "params.yaml").write_text("seed: 1\n")
    _git(repo, "add", "params.yaml")
    _git(repo, "commit", "-q", "-m", "first")
    commit = git_commit(repo)
    assert commit == _git(repo, "rev-parse", "HEAD")
    assert len(commit) == 40
    assert git_dirty(repo) is False


def test_editing_a_tracked_file_makes_the_tree_dirty_until_committed(repo):
    (repo / "params.yaml").write_text("seed: 1\n")
    _git(repo, "add", "params.yaml")
    _git(repo, "commit", "-q", "-m", "first")
    first = git_commit(repo)
    (repo / "params.yaml").write_text("seed: 2\n")
    assert git_dirty(repo) is True
    assert git_commit(repo) == first  # an edit is not a commit
    _git(repo, "commit", "-q", "-am", "second")
    assert git_dirty(repo) is False
    assert git_commit(repo) != first


def test_ignored_files_do_not_make_the_tree_dirty(repo):
    (repo / ".gitignore").write_text("mlruns/\n")
    _git(repo, "add", ".gitignore")
    _git(repo, "commit", "-q", "-m", "ignore")
    (repo / "mlruns").mkdir()
    (repo / "mlruns" / "mlflow.db").write_text("x")
    assert git_dirty(repo) is False
