"""The `mlpipe` command's one mapping from refusals to exit codes: a known refusal is one line on
stderr with its code; anything else is a bug and keeps its traceback."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from mlpipe import errors
from mlpipe.cli import main

PARAMS = Path(__file__).parents[3] / "params.yaml"


@pytest.fixture
def project(tmp_path, monkeypatch):
    shutil.copy(PARAMS, tmp_path / "params.yaml")
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    return tmp_path


def test_a_missing_file_to_ingest_is_one_line_and_exit_1(project, capsys):
    code = main(["ingest", str(project / "nowhere.csv"), "--root", str(project)])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("mlpipe: ") and "nowhere.csv: no such file" in err and "\n" not in err


def test_bad_params_yaml_is_one_line_naming_the_file(project, capsys):
    (project / "params.yaml").write_text("seed: [unclosed\n")
    assert main(["ingest", "x.csv", "--root", str(project)]) == 1
    err = capsys.readouterr().err.strip()
    assert "params.yaml: not valid YAML" in err and "\n" not in err


def test_a_bad_ref_to_promote_is_refused_with_exit_2(project, capsys):
    code = main(["promote", "models:/flights-late/7", "--reason", "checked", "--root", str(project)])
    err = capsys.readouterr().err.strip()
    assert code == errors.EXIT_REFUSED == 2
    assert "models:/flights-late/7: not found in the tracking store" in err


def test_a_bug_is_not_hidden_behind_a_one_line_message(project, monkeypatch):
    import mlpipe.data.landing

    def broken(*args):
        raise KeyError("a bug")

    monkeypatch.setattr(mlpipe.data.landing, "ingest_file", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["ingest", str(PARAMS), "--root", str(project)])


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.ConfigError, 1),
        (errors.LockBusy, 1),
        (errors.ToolError, 1),
        (errors.Refused, 2),
        (errors.SnapshotMismatch, 1),
        (errors.UntrustedTypes, 1),
    ],
)
def test_each_refusal_is_an_mlpipe_error_with_its_exit_code(error, code):
    assert issubclass(error, errors.MlpipeError) and error("x").exit_code == code


def test_a_refusal_that_is_also_a_key_error_prints_without_quotes():
    assert (
        str(errors.MissingColumns("features: columns ['temp'] missing"))
        == "features: columns ['temp'] missing"
    )


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["serve", "--port", "99999"], "mlpipe serve: Invalid value for '--port'"),
        (["serve", "--poll-s", "0"], "mlpipe serve: Invalid value for '--poll-s'"),
        (["reproduce"], "mlpipe reproduce: Missing argument 'ref'."),
        (["nosuch"], "mlpipe: No such command 'nosuch'."),
    ],
)
def test_a_usage_error_is_one_line_naming_the_command_and_exit_2(argv, expected, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(expected) and "\n" not in err, err


def test_version_is_printed_with_exit_0(capsys):
    from importlib.metadata import version

    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"mlpipe {version('mlpipe')}"
