"""Thin `python -m mlpipe.pipeline.stages.<name>` entry points that dvc.yaml calls: read files, call the
library, write files."""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

from mlpipe.config import Params, ProjectPaths, load_params
from mlpipe.runtime.logs import configure_logging, timed

RAN_FILE_ENV = "MLPIPE_STAGE_RAN_FILE"  # set by the flow's runner: each stage that ran appends its name


def write_json(path: Path, payload: dict) -> None:
    """Write JSON with sorted keys and a trailing newline, so equal content gives equal bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(payload, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def stage_main(name: str, body: Callable[[Params, ProjectPaths], None]) -> int:
    """Load params from the working directory (the project root under `dvc repro`), run `body`, map
    errors to exit 1."""
    configure_logging()
    params = load_params()
    paths = ProjectPaths(Path.cwd())
    try:
        with timed("stage", stage=name):
            body(params, paths)
    except Exception as exc:  # the stage's one-line verdict for the operator; the traceback adds nothing
        print(f"stage {name} failed: {exc}", file=sys.stderr)
        return 1
    if ran_file := os.environ.get(RAN_FILE_ENV):  # the runner tells "ran" from "restored from run-cache"
        with open(ran_file, "a", encoding="utf-8") as f:
            f.write(name + "\n")
    return 0
