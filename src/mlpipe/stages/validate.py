"""Stage `validate`: schema + profile of data/ -> profile.json and a readable report; fails on broken rules."""

from __future__ import annotations

from mlpipe.config import Params, ProjectPaths
from mlpipe.data import read_data_dir
from mlpipe.logs import event
from mlpipe.stages import run_stage, write_json
from mlpipe.validation import DataValidationError, profile_frame, render_report, validate_frame


def validate_data(params: Params, paths: ProjectPaths) -> None:
    df = read_data_dir(paths.data)
    violations = validate_frame(df, params)
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
