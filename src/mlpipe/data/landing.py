"""Landing zone: where new batches arrive, how they are checked, quarantined or taken into data/."""

from __future__ import annotations

import contextlib
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from mlpipe.config import Params
from mlpipe.data.frames import (
    DATA_SUFFIX,
    data_files,
    materialise_period,
    next_period,
    read_frame,
    write_frame,
)
from mlpipe.data.validation import Violation, render_report, validate_frame
from mlpipe.errors import AlreadyExists, DataError, MissingInput

BATCH_SUFFIXES = (DATA_SUFFIX, ".csv")


@dataclass(frozen=True)
class BatchVerdict:
    """The outcome of checking one landed batch."""

    path: Path
    rows: int
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.violations


def landed_batches(landing_dir: Path) -> list[Path]:
    """Batch files waiting in the landing zone, in name order (temporary files excluded)."""
    if not landing_dir.is_dir():
        return []
    return sorted(p for p in landing_dir.iterdir() if p.is_file() and p.suffix in BATCH_SUFFIXES)


def read_batch(
    path: Path, time_column: str | None, schema: pa.Schema | None = None, time_format: str = "datetime"
) -> pd.DataFrame:
    """A landed file as a frame; times are read in the declared `time_format` (UTC). With `schema`
    (data/'s column types), a CSV column that data/ holds as text is read as text, never guessed from its
    values (a tail number of digits stays "00123", not the integer 123). Times that do not parse are left
    as they are: the type check refuses them, naming the column."""
    if path.suffix == ".csv":
        text = (
            [f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
            if schema
            else []
        )
        df = pd.read_csv(path, dtype={name: str for name in text})
    else:
        df = read_frame(path)
    if time_column and time_column in df.columns:
        from mlpipe.data.sources import parse_times

        # Numbers are times only as epoch_s/epoch_ms (epoch seconds read as nanoseconds landed in 1970).
        with contextlib.suppress(DataError):
            df[time_column] = parse_times(df[time_column], time_format, time_column)
    return df


def data_schema(data_dir: Path, exclude: str | None = None) -> pa.Schema | None:
    """The column types the files of data/ hold (their schemas unified), or None when there are none.
    `exclude` names a file left out (a batch's own file, written by a run that crashed before its commit)."""
    schemas = [pq.read_schema(f) for f in data_files(data_dir) if f.name != exclude]
    if not schemas:
        return None
    return pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")


def _as_type(values: pd.Series, target: pa.DataType) -> pd.Series | None:
    """`values` as Arrow type `target` without losing or inventing anything, or None when that is not
    possible: numbers are never read as times (their unit is unknown: epoch seconds became 1970 dates),
    times never as numbers, a fractional or missing value never as an integer."""
    try:
        arr = pa.array(values, from_pandas=True)
    except (pa.ArrowInvalid, pa.ArrowTypeError):
        return None
    if arr.type == target:
        return values
    if pa.types.is_timestamp(target) and not pa.types.is_timestamp(arr.type):
        if not (pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type)):
            return None
        parsed = pd.to_datetime(values, utc=True, errors="coerce", format="ISO8601")
        return None if (parsed.isna() & values.notna()).any() else parsed
    if pa.types.is_timestamp(arr.type) != pa.types.is_timestamp(target) or (
        pa.types.is_integer(target) and arr.null_count
    ):
        return None
    try:
        cast = pc.cast(arr, target, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError):
        return None
    if pa.types.is_floating(arr.type) and pa.types.is_string(target):
        return None  # 12345.0 is not the text "12345" that was meant; read such files with their types
    return pd.Series(cast.to_pandas(), index=values.index, name=values.name)


def conform_batch(
    batch: pd.DataFrame, schema: pa.Schema | None, source: str
) -> tuple[pd.DataFrame, list[Violation]]:
    """The batch with data/'s column type in every column both have, so every file of data/ shares one
    schema (and the stages, which read them as one table, never meet a column of two types); a column
    that cannot take its type is a violation naming both types. Columns data/ lacks are kept as they are."""
    if schema is None:
        return batch, []
    out, violations = batch.copy(deep=False), []
    for target in schema:
        if target.name not in batch.columns:
            continue
        values = batch[target.name]
        converted = _as_type(values, target.type)
        if converted is None:
            present = values.dropna()
            violations.append(
                Violation(
                    target.name,
                    f"type {values.dtype} cannot be read as {target.type}, the type data/ holds "
                    "(rule: a batch has the column types of data/)",
                    int(len(present)) or int(len(values)),
                    tuple(str(v)[:40] for v in present.unique()[:3]),
                    source,
                )
            )
        elif converted is not values:
            out[target.name] = converted
    return out, violations


def read_conformed(
    path: Path, time_column: str | None, data_dir: Path, time_format: str = "datetime"
) -> tuple[pd.DataFrame, list[Violation]]:
    """A landed file read and conformed with the column types of data/ (the file it would become there
    left out): the batch check and the snapshot see the same frame."""
    schema = data_schema(data_dir, exclude=data_name(path))
    return conform_batch(read_batch(path, time_column, schema, time_format), schema, path.name)


def row_hashes(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One 64-bit hash per row over `columns` (the identity of a record for duplicate checks)."""
    return pd.util.hash_pandas_object(df[columns], index=False)


def check_batch(
    batch: pd.DataFrame, params: Params, profile: dict, known_rows: set[int], source: str
) -> tuple[list[Violation], list[str]]:
    """Schema violations, rows already in data/, and (as warnings) categories the model never saw."""
    violations = [
        Violation(v.column, v.rule, v.count, v.examples, source) for v in validate_frame(batch, params)
    ]
    key = params.record_columns
    if not violations and known_rows:
        dup = row_hashes(batch, key).isin(known_rows)
        if dup.any():
            violations.append(
                Violation("<rows>", "duplicates rows already in data/", int(dup.sum()), (), source)
            )
    warnings = []
    for col in params.features.categorical:
        seen = set(profile.get("columns", {}).get(col, {}).get("categories", {}))
        if seen and col in batch.columns:
            new = sorted(set(batch[col].dropna().astype(str)) - seen)
            if new:
                warnings.append(
                    f"{col}: {len(new)} categories not in the training profile (e.g. {', '.join(new[:3])})"
                )
    return violations, warnings


def quarantine(path: Path, quarantine_dir: Path, verdict: BatchVerdict) -> Path:
    """Move a rejected batch beside a report naming each broken rule; nothing is deleted."""
    quarantine_dir.mkdir(parents=True, exist_ok=True)
    dest = quarantine_dir / path.name
    n = 1
    while dest.exists():
        dest = quarantine_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    report = render_report(None, verdict.violations, path.name)
    dest.with_name(dest.name + ".report.md").write_text(report, encoding="utf-8")
    shutil.move(str(path), dest)
    return dest


def data_name(path: Path) -> str:
    """The file name a landed batch gets under data/ (stable, so a retried snapshot rewrites the same
    file)."""
    return path.stem + DATA_SUFFIX


def take_into_data(batch: pd.DataFrame, path: Path, data_dir: Path) -> Path:
    """Write an accepted batch under data/ as Parquet; the landing file stays until the commit."""
    dest = data_dir / data_name(path)
    write_frame(batch, dest)
    return dest


def release_next_period(
    load_period, latest: pd.Timestamp, time_column: str | None, freq: str, landing_dir: Path
) -> Path | None:
    """Replay: write the source's period after `latest` into the landing zone; None when the source is
    exhausted."""
    start, end = next_period(latest, freq)
    written = materialise_period(load_period, start, end, landing_dir, time_column, freq)
    return written[0] if written else None


def ingest_file(src: Path, landing_dir: Path, data_dir: Path) -> Path:
    """Copy a user's file into the landing zone (atomically: a half-copied file is never collected)."""
    if src.suffix not in BATCH_SUFFIXES:
        raise DataError(
            f"{src}: unsupported file type {src.suffix!r} (rule: one of {', '.join(BATCH_SUFFIXES)})"
        )
    if not src.is_file():
        raise MissingInput(f"{src}: no such file (rule: ingest takes an existing Parquet or CSV file)")
    landing_dir.mkdir(parents=True, exist_ok=True)
    dest = landing_dir / src.name
    for taken in (dest, data_dir / data_name(src)):
        if taken.exists():
            raise AlreadyExists(
                f"{taken}: a batch of that name already exists "
                "(rule: batch names are unique; rename the file)"
            )
    tmp = landing_dir / f".{src.name}.part"
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return dest
