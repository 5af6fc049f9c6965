"""Stage `split`: train/test parts of data/ (time-aware by default), recorded with the hash of each part.

Rows move as Arrow, never as a pandas frame: the data is read once, the time column alone is sorted,
and each part is gathered, written and dropped in turn (the bytes are those write_frame gives)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from mlpipe.config import Params, ProjectPaths
from mlpipe.data.frames import read_data_table, require_times, write_table
from mlpipe.errors import DataError
from mlpipe.pipeline.split import random_split_positions, time_split_positions
from mlpipe.pipeline.stages import stage_main, write_json
from mlpipe.runtime.hashing import sha256_file
from mlpipe.runtime.lockfiles import dvc_file_md5
from mlpipe.runtime.logs import event


def split_positions(table: pa.Table, params: Params):
    """(train positions, test positions, cutoff or None) of the table's rows."""
    time_col = params.dataset.time_column
    if params.split.method != "time":
        rows = table.select(params.record_columns).to_pandas()
        train_pos, test_pos = random_split_positions(
            rows, params.split.test_fraction, params.seed_for("split")
        )
        del rows
        return train_pos, test_pos, None
    require_times(time_col, table.column(time_col).null_count)
    times = table.column(time_col).to_numpy()
    train_pos, test_pos = time_split_positions(times, params.split.test_fraction)
    cutoff = table.column(time_col).take(test_pos[:1]).to_pandas().iloc[0] if len(test_pos) else None
    return train_pos, test_pos, cutoff


def as_pandas_text(scalar: pa.Scalar) -> str:
    """A value as str() of its pandas form (a Timestamp for times), as the record has always shown it."""
    return str(pa.array([scalar]).to_pandas().iloc[0])


def part_summary(part: pa.Table, params: Params) -> dict:
    """Rows, target rate (a numeric target's mean; classes of a text one) and time range of one part."""
    target = part.column(params.dataset.target)
    out: dict = {"rows": part.num_rows}
    if (
        pa.types.is_integer(target.type)
        or pa.types.is_floating(target.type)
        or pa.types.is_boolean(target.type)
    ):
        out["target_rate"] = round(float(pc.mean(target).as_py()), 6)
    else:
        counts = pc.value_counts(target).to_pylist()
        out["classes"] = {
            str(c["values"]): c["counts"] for c in sorted(counts, key=lambda c: str(c["values"]))
        }
    if params.dataset.time_column:
        bounds = pc.min_max(part.column(params.dataset.time_column))
        out["time_min"] = as_pandas_text(bounds["min"])
        out["time_max"] = as_pandas_text(bounds["max"])
    return out


def labelled(table: pa.Table, target: str) -> pa.Table:
    """The rows that have a target value: a row without one can be neither trained nor tested on (the
    table itself when every row has one, so the split of such data is unchanged)."""
    column = table.column(target)
    if column.null_count == 0:
        return table
    event("unlabelled_rows_left_out", rows=column.null_count)
    return table.filter(pc.is_valid(column))


def split_data(params: Params, paths: ProjectPaths) -> None:
    table = labelled(read_data_table(paths.data), params.dataset.target)
    train_pos, test_pos, cutoff = split_positions(table, params)
    if len(train_pos) == 0 or len(test_pos) == 0:
        raise DataError(
            f"split: train has {len(train_pos)} rows, test {len(test_pos)} (rule: both parts non-empty)"
        )
    parts = {}
    for name, path, positions in (
        ("train", paths.train_split, train_pos),
        ("test", paths.test_split, test_pos),
    ):
        part = table.take(positions)
        write_table(part, path)
        parts[name] = {
            "path": str(path.relative_to(paths.root)),
            "sha256": sha256_file(path),
            **part_summary(part, params),
        }
        del part
    record = {
        "method": params.split.method,
        "seed": params.seed_for("split"),
        "test_fraction": params.split.test_fraction,
        "cutoff": str(cutoff) if cutoff is not None else None,
        "data_md5": dvc_file_md5(paths.root / "data.dvc"),
        "parts": parts,
    }
    write_json(paths.split_record, record)
    event(
        "split", method=params.split.method, cutoff=cutoff, train_rows=len(train_pos), test_rows=len(test_pos)
    )


BODY = split_data  # what the runner calls in process (pipeline.runner), and `main` as DVC's command


def main() -> int:
    return stage_main("split", BODY)


if __name__ == "__main__":
    raise SystemExit(main())
