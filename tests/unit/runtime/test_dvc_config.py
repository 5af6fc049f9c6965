"""`.dvc/config.local` is merged into, never written over: what a worktree (or a user) put there stays, a
setting already there is not written again, and DVC reads the result."""

from __future__ import annotations

from pathlib import Path

from mlpipe.runtime.dvc_config import local_config_value, merge_local_config

WORKTREE_LOCAL = """[cache]
    dir = /shared/cache
['remote "local"']
    url = /shared/store
"""  # as reproduce.share_dvc_storage writes it in a reproduce worktree


def _dvc_reads(dvc_dir: Path):
    from dvc.config import Config

    return Config(dvc_dir=str(dvc_dir), local_dvc_dir=str(dvc_dir))


def test_a_setting_is_added_and_every_key_already_there_kept(tmp_path):
    (tmp_path / "config.local").write_text(WORKTREE_LOCAL)
    assert merge_local_config(tmp_path, {"plots": {"html_template": "tmp/mlpipe-plots.html"}})
    conf = _dvc_reads(tmp_path)
    assert conf["plots"]["html_template"] == "tmp/mlpipe-plots.html"
    assert conf["cache"]["dir"] == "/shared/cache"
    assert conf["remote"]["local"]["url"] == "/shared/store"
    assert local_config_value(tmp_path, "plots", "html_template") == "tmp/mlpipe-plots.html"


def test_merging_again_writes_nothing(tmp_path):
    settings = {"plots": {"html_template": "tmp/mlpipe-plots.html"}}
    assert merge_local_config(tmp_path, settings)  # no file yet: written
    text = (tmp_path / "config.local").read_text()
    assert not merge_local_config(tmp_path, settings)
    assert (tmp_path / "config.local").read_text() == text
    assert merge_local_config(tmp_path, {"plots": {"html_template": "elsewhere.html"}})  # a change: written
    assert local_config_value(tmp_path, "plots", "html_template") == "elsewhere.html"


def test_a_missing_file_or_key_reads_as_none(tmp_path):
    assert local_config_value(tmp_path, "plots", "html_template") is None
    (tmp_path / "config.local").write_text(WORKTREE_LOCAL)
    assert local_config_value(tmp_path, "plots", "html_template") is None
