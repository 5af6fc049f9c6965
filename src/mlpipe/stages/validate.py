"""Stage `validate`: schema + profile of data/ -> profile.json and a readable report; fails on broken rules."""

from __future__ import annotations

from dataclasses import replace

import pandas as pd

from mlpipe.config import Params, ProjectPaths
from mlpipe.data import data_files, read_frame
from mlpipe.logs import event
from mlpipe.stages import run_stage, write_json
from mlpipe.validation import DataValidationError, profile_frame, render_report, validate_frame


def validate_data(params: Params, paths: ProjectPaths) -> None:
    files = data_files(paths.data)
    if not files:
        raise FileNotFoundError(f"{paths.data}: no data files (rule: run `mlpipe bootstrap` first)")
    # Each file is checked on its own, so a broken batch is named and its missing columns are not
    # hidden by the other files when they are put together.
    frames = [read_frame(f) for f in files]
    violations = [replace(v, source=f.name) for f, part in zip(files, frames, strict=True) for v in validate_frame(part, params)]
    df = pd.concat(frames, ignore_index=True)
    profile = None if violations else profile_frame(df, params)
    paths.validation_report.parent.mkdir(parents=True, exist_ok=True)
    paths.validation_report.write_text(render_report(profile, violations, str(paths.data.name) + "/"), encoding="utf-8")
    event("validation", rows=len(df), violations=len(violations), report=paths.validation_report)
    if violations:
        raise DataValidationError(violations)
    write_json(paths.profile, profile)


def main() -> int:
    return run_stage("validate", validate_data)


if __name__ == "__main__":
    raise SystemExit(main())
