"""Which dvc.yaml commands the flow runs in its own process, and which it leaves to DVC."""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import pytest

from mlpipe.errors import StageFailed
from mlpipe.pipeline.runner import in_process_body, reproduce_stage
from mlpipe.pipeline.stages.train import train_model
from mlpipe.runtime.shell import tool_env


def test_the_exact_stage_command_maps_to_its_body():
    assert in_process_body("python -m mlpipe.pipeline.stages.train") == ("train", train_model)


def test_any_other_command_is_left_to_dvc():
    assert in_process_body("python -m mlpipe.pipeline.stages.train --fast") is None
    assert in_process_body("python other.py") is None
    assert in_process_body(["python -m mlpipe.pipeline.stages.train", "echo done"]) is None


def _dvc_project(root: Path, monkeypatch) -> Path:
    monkeypatch.chdir(root)  # DVC resolves a stage name from the working directory, as the flow runs it
    env = tool_env()
    for args in (["git", "init", "-q"], [str(Path(sys.executable).parent / "dvc"), "init", "-q"]):
        subprocess.run(args, cwd=root, env=env, check=True, capture_output=True)
    (root / "dvc.yaml").write_text(
        "stages:\n  hello:\n    cmd: echo hi > out.txt\n    outs:\n      - out.txt\n"
    )
    return root


def test_a_stage_waits_for_another_dvc_process_to_release_the_lock(tmp_path, monkeypatch):
    """A `dvc repro` started from a shell between two flow stages holds DVC's lock: the stage waits."""
    from dvc.lock import make_lock

    root = _dvc_project(tmp_path, monkeypatch)
    lock = make_lock(str(root / ".dvc" / "tmp" / "lock"))
    lock.lock()
    releaser = threading.Timer(6.0, lock.unlock)  # past DVC's own ~3 s of retries
    releaser.start()
    try:
        reproduce_stage(root, "hello", lock_wait_s=60)
    finally:
        releaser.join()
    assert (root / "out.txt").read_text().strip() == "hi"


def test_a_lock_held_past_the_bound_is_one_line_naming_it(tmp_path, monkeypatch):
    from dvc.lock import make_lock

    root = _dvc_project(tmp_path, monkeypatch)
    lock = make_lock(str(root / ".dvc" / "tmp" / "lock"))
    lock.lock()
    try:
        with pytest.raises(StageFailed, match=r"another DVC process held .*lock for more than 2 s"):
            reproduce_stage(root, "hello", lock_wait_s=2)
    finally:
        lock.unlock()
    assert not (root / "out.txt").exists()


def test_a_stage_says_where_it_stands_among_the_pipelines_stages():
    from mlpipe.pipeline.layout import STAGES
    from mlpipe.pipeline.runner import stage_step

    names = list(STAGES)
    assert [stage_step(n) for n in names] == [f"{i}/{len(names)}" for i in range(1, len(names) + 1)]
    assert stage_step("nope") == "?"


def test_the_locked_dvc_has_the_seam_the_runner_replaces(monkeypatch):
    """The contract the in-process shortcut relies on: the pinned DVC's `dvc.stage.run.cmd_run(stage, dry,
    run_env)`, looked up by `run_stage` at call time. A DVC upgrade that changes it fails here (and the runner
    falls back to DVC's own processes)."""
    import inspect

    import dvc.stage.run as dvc_run

    from mlpipe.pipeline.runner import IN_PROCESS_ENV, SEAM_PARAMETERS, in_process_supported

    assert tuple(inspect.signature(dvc_run.cmd_run).parameters) == SEAM_PARAMETERS
    assert "cmd_run" in inspect.getsource(dvc_run.run_stage)
    assert in_process_supported()
    monkeypatch.setenv(IN_PROCESS_ENV, "0")
    assert not in_process_supported()


@pytest.mark.parametrize("in_process", ["1", "0"])
def test_a_command_dvc_runs_is_reported_ran_then_skipped_then_restored(tmp_path, monkeypatch, in_process):
    """Through the seam or through DVC's own processes: a stage that ran says so, an unchanged one is
    skipped, and one whose outputs come back from DVC's run-cache is restored (the seam is put back after)."""
    import dvc.stage.run as dvc_run

    from mlpipe.pipeline.runner import IN_PROCESS_ENV

    monkeypatch.setenv(IN_PROCESS_ENV, in_process)
    seam = dvc_run.cmd_run
    root = _dvc_project(tmp_path, monkeypatch)
    (root / "in.txt").write_text("hi\n")  # DVC's run-cache keeps only stages with deps
    (root / "dvc.yaml").write_text(
        "stages:\n  hello:\n    cmd: cp in.txt out.txt\n"
        "    deps:\n      - in.txt\n    outs:\n      - out.txt\n"
    )
    # DVC's own processes: only mlpipe's stages report that they ran (see runner._in_process_commands)
    assert reproduce_stage(root, "hello") == ("ran" if in_process == "1" else "restored")
    assert reproduce_stage(root, "hello") == "skipped"
    (root / "out.txt").unlink()
    assert reproduce_stage(root, "hello") == "restored"
    assert dvc_run.cmd_run is seam


def test_a_stage_dvc_runs_in_its_own_process_reports_that_it_ran(tmp_path, monkeypatch):
    """Without the seam, DVC runs `python -m mlpipe.pipeline.stages.<name>`: its main appends the stage's
    name to the runner's file, so the flow still tells "ran" from "restored"; a failing body reports
    nothing."""
    import shutil

    from mlpipe.pipeline.stages import RAN_FILE_ENV, stage_main

    shutil.copy(Path(__file__).parents[3] / "params.yaml", tmp_path / "params.yaml")
    monkeypatch.chdir(tmp_path)
    ran = tmp_path / "ran"
    monkeypatch.setenv(RAN_FILE_ENV, str(ran))
    assert stage_main("train", lambda params, paths: None) == 0
    assert stage_main("evaluate", lambda params, paths: 1 / 0) == 1
    assert ran.read_text().split() == ["train"]


def test_a_long_stage_says_it_is_still_at_work_and_a_short_one_says_nothing(caplog):
    import logging
    import time

    from mlpipe.pipeline.runner import heartbeat

    with caplog.at_level(logging.INFO, logger="mlpipe"), heartbeat("train", every_s=0.2):
        time.sleep(0.5)
    beats = [r.getMessage() for r in caplog.records if "stage_running" in r.getMessage()]
    assert len(beats) >= 2 and "stage=train" in beats[0] and "step=3/4" in beats[0], beats
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="mlpipe"), heartbeat("split", every_s=5):
        pass
    assert not [r for r in caplog.records if "stage_running" in r.getMessage()]
