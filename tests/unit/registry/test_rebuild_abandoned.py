"""The rebuild of `mlpipe reproduce` runs beside the recorded model's checks: when those fail it is
abandoned, and the stages it started go with it; a failed rebuild is one error naming its last lines."""

from __future__ import annotations

import os
import stat
import sys
import time
from pathlib import Path

import pytest

from mlpipe.errors import ToolError
from mlpipe.registry.reproduce.rebuild import rerun_stages
from mlpipe.runtime.guard import group_running

# A stand-in for `dvc repro --force` with a stage process of its own: writes the stage's pid, then waits.
FAKE_DVC = """#!/bin/sh
echo $$ > "$PWD/dvc.pid"
sleep 600 &
echo $! > "$PWD/stage.pid"
echo "stage started"
wait
"""
FAILING_DVC = """#!/bin/sh
echo "ERROR: failed to reproduce 'train': exit 1" >&2
exit 1
"""

linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="process groups as on Linux")


def _bin(tmp_path: Path, script: str) -> Path:
    bindir = tmp_path / "env" / "bin"
    bindir.mkdir(parents=True)
    dvc = bindir / "dvc"
    dvc.write_text(script)
    dvc.chmod(dvc.stat().st_mode | stat.S_IXUSR)
    return bindir / "python"  # rerun_stages runs the `dvc` beside this interpreter


@linux_only
def test_an_abandoned_rebuild_stops_with_the_stages_it_started(tmp_path):
    python, wt = _bin(tmp_path, FAKE_DVC), tmp_path / "wt"
    wt.mkdir()
    t0, stage_group = time.monotonic(), []

    def asked() -> bool:  # once the stage runs (its group noted), and half a second has passed
        if (wt / "stage.pid").exists() and not stage_group:
            stage_group.append(os.getpgid(int((wt / "stage.pid").read_text())))
        return bool(stage_group) and time.monotonic() - t0 > 0.5

    assert rerun_stages(wt, python, abandon=asked) is False
    group = int((wt / "dvc.pid").read_text())
    assert stage_group == [group], "the stage runs in the rebuild's own process group"
    assert not group_running(group), "returned only once the rebuild and its stage are gone"
    assert time.monotonic() - t0 < 30  # not the stage's 600 s


def test_a_failed_rebuild_is_one_error_with_its_last_lines(tmp_path):
    python, wt = _bin(tmp_path, FAILING_DVC), tmp_path / "wt"
    wt.mkdir()
    with pytest.raises(ToolError, match="failed to reproduce 'train'"):
        rerun_stages(wt, python)
