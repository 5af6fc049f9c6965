"""The rebuild: `dvc repro --force` in the checkout with the chosen environment's interpreter, abandoned as
soon as the recorded model is known to fail its checks; the outputs it produced."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

import yaml

from mlpipe.errors import ToolError
from mlpipe.runtime.lockfiles import stage_output_hashes
from mlpipe.runtime.shell import stop_process_group, tool_env

ABANDON_POLL_S = 0.2  # how often the rebuild looks whether the recorded model failed its checks


def rerun_stages(wt: Path, python: Path, abandon: Callable[[], bool] = lambda: False) -> bool:
    """`dvc repro --force` in the worktree with the environment of `python` (its bin/ first on PATH, so
    the stages' `python` is that one) and the commit's own code first on the import path. In a process
    group of its own, stopped whole (with the stages it started) as soon as `abandon()` turns true (then
    False is returned) or this process unwinds."""
    bindir = str(python.parent)
    imports = [str(wt / "src")]
    if python == Path(
        sys.executable
    ):  # the running environment: its own import path stays, below the commit's
        imports += [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p]
    env = tool_env({"PYTHONPATH": os.pathsep.join(imports)})
    env["PATH"] = bindir + os.pathsep + env["PATH"]
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.Popen(
            [str(python.parent / "dvc"), "repro", "--force"],
            cwd=wt,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            process_group=0,
        )
        try:
            while proc.poll() is None:
                if abandon():
                    return False
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(timeout=ABANDON_POLL_S)
        finally:
            if proc.poll() is None:
                stop_process_group(proc, grace_s=10)
        if proc.returncode != 0:
            out.seek(0)
            tail = "\n".join(out.read().strip().splitlines()[-10:])
            raise ToolError(f"dvc repro --force failed in the isolated checkout:\n{tail}")
    return True


def reproduced_outputs(wt: Path) -> dict:
    """Hashes and metrics of what `dvc repro` produced in the worktree."""
    lock = yaml.safe_load((wt / "dvc.lock").read_text())
    data_md5 = next((d["md5"] for d in lock["stages"]["validate"]["deps"] if d["path"] == "data"), "")
    return {
        "data_md5": data_md5,
        "stage_outputs": {
            f"{s}:{p}": md5
            for s, outs in stage_output_hashes(wt / "dvc.lock").items()
            for p, md5 in outs.items()
        },
        "model_sha256": json.loads((wt / "artifacts/model/manifest.json").read_text())["model_sha256"],
        "metrics": json.loads((wt / "metrics.json").read_text()),
    }


def python_major_minor(version: str) -> str:
    """ "3.11" of a recorded "3.11.7"; the running interpreter's when nothing was recorded. Pure."""
    parts = version.split(".")[:2] if version else [str(sys.version_info[0]), str(sys.version_info[1])]
    return ".".join(parts)
