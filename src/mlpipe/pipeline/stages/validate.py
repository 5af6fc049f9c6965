"""Stage `validate`: schema + profile of data/ -> profile.json and a readable report; fails on broken rules.

Each file is checked on its own, so a broken batch is named and its missing columns are not hidden by
the other files. A file is read in row chunks (one pandas chunk at a time), and the profile reads only
the columns it describes: memory follows the used columns, not the whole data set as pandas frames."""

from __future__ import annotations

from dataclasses import replace

import pyarrow.parquet as pq

from mlpipe.config import Params, ProjectPaths
from mlpipe.data.frames import data_files, read_chunks, read_data_dir
from mlpipe.data.validation import profile_frame, render_report, validate_chunks
from mlpipe.errors import DataValidationError, MissingInput
from mlpipe.pipeline.stages import stage_main, write_json
from mlpipe.runtime.logs import event

CHUNK_ROWS = 250_000  # pandera holds about 2x a chunk while it checks it


def validate_data(params: Params, paths: ProjectPaths) -> None:
    files = data_files(paths.data)
    if not files:
        raise MissingInput(f"{paths.data}: no data files (rule: run `mlpipe bootstrap` first)")
    violations = [
        replace(v, source=f.name) for f in files for v in validate_chunks(read_chunks(f, CHUNK_ROWS), params)
    ]
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    profile = None
    if not violations:
        used = params.record_columns
        profile = profile_frame(read_data_dir(paths.data, columns=list(dict.fromkeys(used))), params)
    paths.validation_report.parent.mkdir(parents=True, exist_ok=True)
    paths.validation_report.write_text(
        render_report(profile, violations, str(paths.data.name) + "/"), encoding="utf-8"
    )
    event("validation", rows=rows, violations=len(violations), report=paths.validation_report)
    if violations:
        raise DataValidationError(violations)
    write_json(paths.profile, profile)


BODY = validate_data  # what the runner calls in process (pipeline.runner), and `main` as DVC's command


def main() -> int:
    return stage_main("validate", BODY)


if __name__ == "__main__":
    raise SystemExit(main())
