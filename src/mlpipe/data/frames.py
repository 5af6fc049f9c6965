"""Dataset loading, period batching and deterministic files (the split algorithms are in
mlpipe.pipeline.split)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import date
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from mlpipe.data.zone import DATA_SUFFIX
from mlpipe.errors import DataError, MissingInput


def period_label(ts: pd.Series, freq: str) -> pd.Series:
    """First day of each timestamp's period (UTC): the 1st of the month, or the Monday of the ISO week.
    ISO dates sort in time order, so file names built from them do too."""
    day = (
        ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize()
        if ts.dt.tz is not None
        else ts.dt.normalize()
    )
    start = (
        day.dt.to_period("M").dt.start_time
        if freq == "month"
        else day - pd.to_timedelta(day.dt.dayofweek, unit="D")
    )
    return start.dt.strftime("%Y-%m-%d")


def next_period(latest: pd.Timestamp, freq: str) -> tuple[date, date]:
    """[start, end) of what comes after `latest`: from the next UTC day to the end of that day's period
    (calendar month, or ISO week ending on Sunday), so replayed batches neither overlap nor leave gaps."""
    ts = pd.Timestamp(latest)
    if ts.tzinfo is not None:
        ts = ts.tz_convert("UTC").tz_localize(None)
    start = ts.normalize() + pd.Timedelta(days=1)
    if freq == "month":
        end = (start.to_period("M") + 1).start_time
    else:
        end = start - pd.Timedelta(days=start.dayofweek) + pd.Timedelta(days=7)
    return start.date(), end.date()


def partition_by_period(df: pd.DataFrame, time_column: str, freq: str) -> dict[str, pd.DataFrame]:
    """Split a frame into consecutive periods, keyed by label, each keeping the frame's row order."""
    require_times(time_column, int(df[time_column].isna().sum()))
    labels = period_label(df[time_column], freq)
    return {str(label): part.reset_index(drop=True) for label, part in df.groupby(labels, sort=True)}


def require_times(time_column: str, missing: int) -> None:
    """Every row needs a time to be batched or split: `missing` rows have none."""
    if missing:
        raise DataError(
            f"{time_column}: {missing} rows without a time "
            "(rule: every row needs a time to be batched or split)"
        )


def write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write Parquet deterministically: same frame and library versions give the same bytes."""
    write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def write_table(table: pa.Table, path: Path) -> None:
    """Write an Arrow table as write_frame does (same bytes as the frame it converts to), without
    going through pandas: the large-data stages move rows as Arrow, which keeps strings compact."""
    write_tables([table], path)


def write_tables(tables: Iterable[pa.Table], path: Path) -> None:
    """Write tables of one schema as one Parquet file, each as write_table writes it (its own row groups),
    holding one at a time; the file appears only once complete (no file when there is no table)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    writer = None
    try:
        for table in tables:
            if writer is None:
                writer = pq.ParquetWriter(tmp, table.schema, compression="zstd")
            writer.write_table(table)
    except BaseException:
        if writer is not None:
            writer.close()
        tmp.unlink(missing_ok=True)
        raise
    if writer is None:
        return
    writer.close()
    tmp.replace(path)


def read_frame(path: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """A Parquet file as a frame with its written column types; only `columns` when given."""
    return arrow_to_frame(pq.read_table(path, columns=columns))


def arrow_to_frame(table: pa.Table) -> pd.DataFrame:
    """Arrow to pandas (types as pd.read_parquet gives them) without holding two copies: each column
    becomes its own block and its Arrow buffers are released as it is converted. pandas' default
    first converts, then consolidates same-typed columns into one 2-D block: twice the frame at once.
    The table must not be used afterwards."""
    return table.to_pandas(split_blocks=True, self_destruct=True)


def read_chunks(path: Path, rows: int, columns: list[str] | None = None) -> Iterator[pd.DataFrame]:
    """A Parquet file as frames of at most `rows` rows, in order, with the types read_frame gives; only
    one chunk (and the row group under it) is in memory at a time. An empty file gives one empty frame,
    so its columns can still be checked."""
    pf = pq.ParquetFile(path)
    schema = (
        pf.schema_arrow
        if columns is None
        else pa.schema([pf.schema_arrow.field(c) for c in columns], metadata=pf.schema_arrow.metadata)
    )
    empty = True
    for batch in pf.iter_batches(batch_size=rows, columns=columns):
        empty = False
        yield arrow_to_frame(pa.Table.from_batches([batch], schema=schema))
    if empty:
        yield arrow_to_frame(schema.empty_table())


def read_head(path: Path, rows: int, columns: list[str] | None = None) -> pd.DataFrame:
    """The first `rows` rows of a Parquet file, without reading the rest."""
    return next(read_chunks(path, rows, columns))


def data_files(data_dir: Path) -> list[Path]:
    """The data files of a directory in name order (names carry the period, so this is time order)."""
    return sorted(p for p in data_dir.glob(f"*{DATA_SUFFIX}") if p.is_file())


def read_data_table(data_dir: Path, columns: list[str] | None = None) -> pa.Table:
    """All data files of a directory as one Arrow table, in file-name order. The files' chunks are
    put side by side, not copied; types that differ between files are widened (int64 + double)."""
    files = data_files(data_dir)
    if not files:
        raise MissingInput(f"{data_dir}: no *{DATA_SUFFIX} files (rule: run `mlpipe bootstrap` first)")
    return pa.concat_tables([pq.read_table(p, columns=columns) for p in files], promote_options="permissive")


def read_data_dir(data_dir: Path, columns: list[str] | None = None) -> pd.DataFrame:
    """All data files of a directory as one frame, in file-name order (one conversion from Arrow,
    instead of a frame per file plus their concatenation)."""
    return arrow_to_frame(read_data_table(data_dir, columns))


INITIAL_FILE = f"batch-0-initial{DATA_SUFFIX}"  # the one file of a source without a time column


def materialise_period(
    load_period, start: date | None, end: date | None, data_dir: Path, time_column: str | None, freq: str
) -> list[Path]:
    """Write the source's rows in [start, end) under data_dir as one file per period, each named after
    the first day it covers (`batch-YYYY-MM-DD`); without a time column (or a period), every row of the
    source as one file in arrival order. Return the files."""
    df = load_period(start, end)
    if time_column is None:
        path = data_dir / INITIAL_FILE
        write_frame(df.reset_index(drop=True), path)
        return [path]
    written = []
    first = start.isoformat() if start else ""
    for label, part in partition_by_period(df, time_column, freq).items():
        path = data_dir / f"batch-{max(label, first)}{DATA_SUFFIX}"
        write_frame(part, path)
        written.append(path)
    return written
