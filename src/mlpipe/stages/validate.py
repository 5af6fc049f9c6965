"""Stage `validate`: schema + profile of data/ -> profile.json and a readable report; fails on broken rules.

Each file is checked on its own, so a broken batch is named and its missing columns are not hidden by
the other files. A file is read in row chunks (one pandas chunk at a time), and the profile reads only
the columns it describes: memory follows the used columns, not the whole data set as pandas frames."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from mlpipe.config import Params, ProjectPaths
from mlpipe.data import arrow_to_frame, data_files, read_data_dir
from mlpipe.logs import event
from mlpipe.stages import run_stage, write_json
from mlpipe.validation import DataValidationError, profile_frame, render_report, validate_chunks

CHUNK_ROWS = 250_000  # pandera holds about 2x a chunk while it checks it


def file_chunks(path: Path, rows: int = CHUNK_ROWS) -> Iterator:
    """The file's rows as pandas frames of at most `rows` rows, with the column types the file was
    written with; an empty file gives one empty frame, so its columns are still checked."""
    pf = pq.ParquetFile(path)
    schema = pf.schema_arrow
    empty = True
    for batch in pf.iter_batches(batch_size=rows):
        empty = False
        yield arrow_to_frame(pa.Table.from_batches([batch], schema=schema))
    if empty:
        yield arrow_to_frame(schema.empty_table())


def validate_data(params: Params, paths: ProjectPaths) -> None:
    files = data_files(paths.data)
    if not files:
        raise FileNotFoundError(f"{paths.data}: no data files (rule: run `mlpipe bootstrap` first)")
    violations = [replace(v, source=f.name) for f in files for v in validate_chunks(file_chunks(f), params)]
    rows = sum(pq.ParquetFile(f).metadata.num_rows for f in files)
    profile = None
    if not violations:
        used = [*params.features.columns, params.dataset.target, params.dataset.time_column]
        profile = profile_frame(read_data_dir(paths.data, columns=list(dict.fromkeys(used))), params)
    paths.validation_report.parent.mkdir(parents=True, exist_ok=True)
    paths.validation_report.write_text(render_report(profile, violations, str(paths.data.name) + "/"), encoding="utf-8")
    event("validation", rows=rows, violations=len(violations), report=paths.validation_report)
    if violations:
        raise DataValidationError(violations)
    write_json(paths.profile, profile)


def main() -> int:
    return run_stage("validate", validate_data)


if __name__ == "__main__":
    raise SystemExit(main())
