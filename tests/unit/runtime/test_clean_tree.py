"""Only a committed tree trains a registrable model: what is uncommitted is listed in one line."""

from __future__ import annotations

import subprocess

import pytest

from mlpipe.errors import EXIT_DIRTY, DirtyTree
from mlpipe.registry import tags as tag
from mlpipe.release.gate import record_check
from mlpipe.runtime.git import require_clean_tree


def _git(root, *args):
    subprocess.run(
        ["git", "-c", "user.email=t@t", "-c", "user.name=t", *args], cwd=root, check=True, capture_output=True
    )


def test_a_tree_outside_git_or_with_changes_is_refused_listing_them(tmp_path):
    with pytest.raises(DirtyTree, match="not a git repository"):
        require_clean_tree(tmp_path)
    _git(tmp_path, "init", "-q")
    (tmp_path / ".gitignore").write_text("/data\n")
    (tmp_path / "params.yaml").write_text("seed: 1\n")
    _git(tmp_path, "add", "-A")
    _git(tmp_path, "commit", "-qm", "first")
    require_clean_tree(tmp_path)  # clean
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "x.parquet").write_text("ignored")
    require_clean_tree(tmp_path)  # ignored files do not count
    (tmp_path / "params.yaml").write_text("seed: 2\n")
    (tmp_path / "dvc_plots").mkdir()
    (tmp_path / "dvc_plots" / "index.html").write_text("untracked")
    with pytest.raises(DirtyTree) as info:
        require_clean_tree(tmp_path)
    message = str(info.value)
    assert "2 uncommitted path(s): dvc_plots/index.html, params.yaml" in message and "--experiment" in message
    assert info.value.exit_code == EXIT_DIRTY == 6 and "\n" not in message


def test_the_gate_promotes_only_a_complete_record_of_a_clean_tree():
    complete = {tag.GIT_COMMIT: "abc", tag.DATA_MD5: "d.dir", tag.MODEL_SHA256: "f00", tag.GIT_DIRTY: "false"}
    assert record_check(complete).passed
    dirty = record_check(complete | {tag.GIT_DIRTY: "true"})
    assert not dirty.passed and dirty.value == "dirty tree"
    partial = record_check({k: v for k, v in complete.items() if k != tag.DATA_MD5})
    assert not partial.passed and f"missing {tag.DATA_MD5}" in partial.value
    assert "an experiment" in record_check(complete | {tag.EXPERIMENT: "unreproducible"}).value
