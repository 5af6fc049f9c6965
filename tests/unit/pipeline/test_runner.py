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
