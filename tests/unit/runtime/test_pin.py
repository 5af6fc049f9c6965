"""The pin of a project made by `mlpipe init`: the code hash, the refusal, the lock re-rooted on it."""

from __future__ import annotations

import tomllib
import zipfile
from pathlib import Path

import pytest

from mlpipe.errors import Refused
from mlpipe.pipeline.layout import with_locked_stages
from mlpipe.registry.reproduce.compare import Row
from mlpipe.registry.reproduce.report import Verdict, verdict_line
from mlpipe.runtime.pin import (
    MlpipeId,
    code_digest,
    pin_mismatch,
    pin_table,
    read_pin,
    require_pinned_mlpipe,
    running_mlpipe,
    source_tree_code_sha256,
    wheel_code_sha256,
)
from mlpipe.runtime.project_env import project_lock_text, project_name, pyproject_text

ROOT = Path(__file__).resolve().parents[3]


def test_the_code_hash_is_the_same_from_a_wheel_and_from_folders_and_changes_with_one_byte(tmp_path):
    files = [("mlpipe/a.py", b"x = 1\n"), ("flows/b.py", b"y = 2\n")]
    wheel = tmp_path / "mlpipe-0.1.0-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name, data in [*files, ("mlpipe-0.1.0.dist-info/RECORD", b"")]:
            zf.writestr(name, data)
    assert wheel_code_sha256(wheel) == code_digest(reversed(files)) == code_digest(files)
    assert code_digest([("mlpipe/a.py", b"x = 2\n"), files[1]]) != code_digest(files)
    assert running_mlpipe().code_sha256 == source_tree_code_sha256(ROOT)  # this checkout runs its own code


def test_a_project_pinning_other_code_is_refused_in_one_line_naming_both_and_the_upgrade(tmp_path):
    pinned = MlpipeId("0.1.0", "a" * 64, "vendor/mlpipe-0.1.0-py3-none-any.whl")
    (tmp_path / "pyproject.toml").write_text(pyproject_text("p", "==3.11.*", pinned))
    assert read_pin(tmp_path) == pinned
    with pytest.raises(Refused) as exc:
        require_pinned_mlpipe(tmp_path)
    message = str(exc.value)
    assert "\n" not in message and "pins mlpipe 0.1.0 (code aaaaaaaaaaaa)" in message
    assert f"the running mlpipe is 0.1.0 (code {running_mlpipe().code_sha256[:12]})" in message
    assert "`mlpipe upgrade`" in message
    assert pin_mismatch(pinned, MlpipeId("0.2.0", "a" * 64)) is None  # the code decides, not the label
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    with pytest.raises(Refused, match=r"pins no mlpipe .*`mlpipe upgrade` pins the running one"):
        require_pinned_mlpipe(tmp_path)  # made by an mlpipe before pins: its models would not reproduce
    (tmp_path / "pyproject.toml").unlink()
    with pytest.raises(Refused, match="pins no mlpipe"):
        require_pinned_mlpipe(tmp_path)
    (tmp_path / "src" / "mlpipe").mkdir(parents=True)
    require_pinned_mlpipe(tmp_path)  # mlpipe's own source tree (the bundled project) runs its own code
    assert "[tool.mlpipe]" in pin_table(pinned)


def test_the_project_lock_is_mlpipes_own_without_its_dev_group_and_with_mlpipe_from_the_wheel():
    mlpipe_lock = (ROOT / "uv.lock").read_text()
    text = project_lock_text(mlpipe_lock, "my-proj", "vendor/mlpipe-0.1.0-py3-none-any.whl", "f" * 64)
    ours = {p["name"]: p for p in tomllib.loads(text)["package"]}
    theirs = {p["name"]: p for p in tomllib.loads(mlpipe_lock)["package"]}
    assert ours["my-proj"]["source"] == {"virtual": "."}
    assert ours["mlpipe"]["source"] == {"path": "vendor/mlpipe-0.1.0-py3-none-any.whl"}
    assert ours["mlpipe"]["wheels"] == [
        {"filename": "mlpipe-0.1.0-py3-none-any.whl", "hash": "sha256:" + "f" * 64}
    ]
    assert "dev-dependencies" not in ours["mlpipe"] and "pytest" not in ours and "ruff" not in ours
    assert (
        ours["scikit-learn"] == theirs["scikit-learn"] and ours["psycopg-binary"] == theirs["psycopg-binary"]
    )
    assert list(ours) == sorted(ours)
    assert project_name("My Data!") == "my-data" and project_name("mlpipe") == "mlpipe-project"


def test_an_older_project_gets_the_lock_and_the_wheel_as_deps_of_train_and_evaluate_once():
    pipeline = {
        "stages": {"split": {"deps": ["data"]}, "train": {"deps": ["a"]}, "evaluate": {"deps": ["uv.lock"]}}
    }
    locked = with_locked_stages(pipeline, ["uv.lock", "vendor"])
    assert locked["stages"]["train"]["deps"] == ["a", "uv.lock", "vendor"]
    assert locked["stages"]["evaluate"]["deps"] == ["uv.lock", "vendor"]
    assert locked["stages"]["split"] == {"deps": ["data"]}
    assert with_locked_stages(locked, ["uv.lock", "vendor"]) == locked


def test_a_verdict_that_is_not_identical_names_the_cause_in_its_first_words():
    rows = [
        Row("model_sha256", "a", "b", False),
        Row("env scikit-learn", "1.9.1", "1.9.1", True, counts=False),
        Row("env mlpipe code", "c" * 64, "d" * 64, False, counts=False),
    ]
    line = verdict_line(Verdict("models:/m/1", "r", "c", "d", rows))
    assert (
        line.startswith("verdict: NOT IDENTICAL, cause: mlpipe code cccc")
        and "(differ: model_sha256)" in line
    )
    assert verdict_line(Verdict("m", "r", "c", "d", rows[1:2])) == "verdict: IDENTICAL"


def test_an_mlpipe_run_from_its_source_tree_without_being_installed_reads_its_version_there(monkeypatch):
    import importlib.metadata
    import tomllib
    from pathlib import Path

    from mlpipe.runtime.pin import running_version

    def not_installed(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "version", not_installed)
    pyproject = Path(__file__).resolve().parents[3] / "pyproject.toml"
    assert running_version() == tomllib.loads(pyproject.read_text())["project"]["version"]
