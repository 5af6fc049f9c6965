"""Landing zone: where new batches arrive, how they are checked, quarantined or taken into data/.

A landed file is never held whole. It is read `retrain.chunk_rows` rows at a time (CSV through Arrow's
streaming reader, Parquet by row batches), each chunk conformed to data/'s column types, checked, hashed
and, once the batch is accepted, written under data/ as one row group. A file over `retrain.max_batch_mb`
is refused from its size alone, one over `retrain.max_batch_rows` as soon as the count passes it.
Bound: peak RSS <= base + k x (one chunk's CSV bytes), whatever the file's size. bench/landing.py
measured k <= 34 on junk ("zz" in every cell of the 29 bundled columns): at the default 100k rows
(8.3 MB of CSV) 165-282 MB above base for 10-200 MB files, at 25k rows 116-134 MB. k is per-chunk
working memory (the chunk as pandas columns, pandera's copy, the reader's blocks, allocator slack).
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pacsv
import pyarrow.parquet as pq

from mlpipe.config import Params
from mlpipe.data.frames import (
    DATA_SUFFIX,
    arrow_to_frame,
    data_files,
    materialise_period,
    next_period,
    read_chunks,
    write_tables,
)
from mlpipe.data.sources import times_or_nat
from mlpipe.data.validation import (
    MAX_CLASSES_SEEN,
    MAX_EXAMPLES,
    ChunkValidator,
    Violation,
    merge_violations,
    render_report,
)
from mlpipe.data.zone import BATCH_SUFFIXES, landed_batches  # noqa: F401 - landed_batches: landing's API
from mlpipe.errors import AlreadyExists, DataError, MissingInput

# pandas' default na_values: a CSV cell is missing exactly when pd.read_csv would read it as missing.
NA_TEXT = (
    *("", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN"),
    *("<NA>", "N/A", "NA", "NULL", "NaN", "None", "n/a", "nan", "null"),
)
# What Arrow's CSV reader parses at once: its memory grows with it; a longer row is unreadable.
CSV_BLOCK_BYTES = 1 << 18
_CAST_ERRORS = (pa.ArrowInvalid, pa.ArrowNotImplementedError, pa.ArrowTypeError)


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


def data_schema(data_dir: Path, exclude: str | None = None) -> pa.Schema | None:
    """The column types the files of data/ hold (their schemas unified), or None when there are none.
    `exclude` names a file left out (a batch's own file, written by a run that crashed before its commit)."""
    schemas = [pq.read_schema(f) for f in data_files(data_dir) if f.name != exclude]
    if not schemas:
        return None
    return pa.unify_schemas([s.remove_metadata() for s in schemas], promote_options="permissive")


# ---- reading in chunks ----------------------------------------------------------------------------


def landed_tables(
    path: Path, schema: pa.Schema | None, chunk_rows: int, columns: list[str] | None = None
) -> Iterator[pa.Table]:
    """A landed file as Arrow tables of `chunk_rows` rows (the last may be shorter; a file without rows
    gives one empty table), only `columns` when given; one chunk (and the block under it) in memory at a
    time. CSV columns that data/ holds (`schema`) are read as text and converted by conform_table, which
    can then count and show what does not convert; other columns are typed from the first block, and
    times are never guessed. A file that cannot be read is a DataError naming it and why."""
    try:
        if path.suffix == ".csv":
            text = {f.name: pa.string() for f in schema} if schema else {}
            reader = pacsv.open_csv(
                path,
                read_options=pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES),
                convert_options=pacsv.ConvertOptions(
                    column_types=text,
                    null_values=list(NA_TEXT),
                    strings_can_be_null=True,
                    timestamp_parsers=[],
                    include_columns=columns or [],
                ),
            )
            yield from _rebatch(reader, reader.schema, chunk_rows)
        else:
            pf = pq.ParquetFile(path)
            file_schema = pf.schema_arrow
            if columns is not None:
                file_schema = pa.schema([file_schema.field(c) for c in columns])
            batches = pf.iter_batches(batch_size=chunk_rows, columns=columns)
            yield from _rebatch(batches, file_schema, chunk_rows)
    except (pa.ArrowException, OSError, KeyError) as exc:
        raise DataError(
            f"{path.name}: {' '.join(str(exc).split())[:300]} "
            "(rule: a batch is a UTF-8 CSV file with a header, or a Parquet file)"
        ) from None


def _rebatch(batches: Iterable[pa.RecordBatch], schema: pa.Schema, rows: int) -> Iterator[pa.Table]:
    """Tables of exactly `rows` rows (the last may be shorter, no input gives one empty table) from
    batches of any size: the chunks, and so the row groups written from them, do not depend on how the
    reader blocked the file."""
    schema = schema.remove_metadata()
    pending: list[pa.RecordBatch] = []
    held, cut = 0, False
    for batch in batches:
        pending.append(batch)
        held += batch.num_rows
        while held >= rows:
            table = pa.Table.from_batches(pending, schema=schema)
            yield table.slice(0, rows)
            rest = table.slice(rows)
            pending, held, cut = rest.to_batches(), rest.num_rows, True
    if held or not cut:
        yield pa.Table.from_batches(pending, schema=schema)


def declared_rows(path: Path) -> int | None:
    """The row count a Parquet file's footer states (read without its data), None for CSV."""
    if path.suffix == ".csv":
        return None
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except (pa.ArrowException, OSError):
        return None  # reading it will say why it is unreadable


# ---- data/'s column types ---------------------------------------------------------------------------


def conform_table(
    table: pa.Table, schema: pa.Schema | None, time_format: str, source: str
) -> tuple[pa.Table, list[Violation]]:
    """The chunk with data/'s column type in every column both have, so every file of data/ shares one
    schema (and the stages, which read them as one table, never meet a column of two types). A column that
    cannot take its type is a violation naming both types, how many values do not convert and a few of
    them; it is left as it is (its batch is refused). Columns data/ lacks are kept as they are."""
    if schema is None:
        return table, []
    violations = []
    for target in schema:
        if target.name not in table.column_names:
            continue
        i = table.schema.get_field_index(target.name)
        values = table.column(i)
        converted, bad, examples = conform_array(values, target.type, time_format)
        if converted is None:
            how = f" (time_format {time_format})" if pa.types.is_timestamp(target.type) else ""
            violations.append(
                Violation(
                    target.name,
                    f"type {values.type} cannot be read as {target.type}{how}, the type data/ holds "
                    "(rule: a batch has the column types of data/)",
                    bad,
                    examples,
                    source,
                )
            )
        elif converted is not values:
            table = table.set_column(i, pa.field(target.name, converted.type), converted)
    return table, violations


def conform_array(
    values: pa.ChunkedArray, target: pa.DataType, time_format: str
) -> tuple[pa.ChunkedArray | None, int, tuple[str, ...]]:
    """`values` as Arrow type `target` without losing or inventing anything, else (None, how many values
    do not convert, a few of them). Text is parsed (times strictly in `time_format`); numbers are never
    read as times (their unit is unknown: epoch seconds became 1970 dates), times never as numbers, a
    fractional or missing value never as an integer."""
    source = values.type
    if source == target:
        return values, 0, ()
    if _is_text(source) and not _is_text(target):
        return _text_as(values, target, time_format)
    present = len(values) - values.null_count
    refused = None, present or len(values), _shown(values.drop_null())
    if pa.types.is_timestamp(target) != pa.types.is_timestamp(source) or (
        pa.types.is_integer(target) and values.null_count
    ):
        return refused
    if pa.types.is_floating(source) and _is_text(target):
        return refused  # 12345.0 is not the text "12345" that was meant; read such files with their types
    try:
        return pc.cast(values, target, safe=True), 0, ()
    except _CAST_ERRORS:
        return refused


def _text_as(
    values: pa.ChunkedArray, target: pa.DataType, time_format: str
) -> tuple[pa.ChunkedArray | None, int, tuple[str, ...]]:
    """Text as a time or a number; what does not parse is counted and shown. Values that cannot be one
    (no digit, for a number not inf/nan either) are found by Arrow, so a column of junk costs one regex
    pass, not a parse per value; the rest is parsed in pandas, one chunk at a time."""
    is_time, is_int = pa.types.is_timestamp(target), pa.types.is_integer(target)
    if not (is_time or is_int or pa.types.is_floating(target)):
        return None, len(values) - values.null_count or len(values), _shown(values.drop_null())
    if not is_time and not (is_int and values.null_count):
        try:  # Arrow parses well-formed numbers itself; the rest is sorted out below
            return pc.cast(values, target, safe=True), 0, ()
        except _CAST_ERRORS:
            pass
    pattern = r"\d" if is_time else _MAYBE_NUMBER
    maybe = pc.fill_null(pc.match_substring_regex(values, pattern, ignore_case=True), False)
    hopeless = values.filter(pc.and_(pc.is_valid(values), pc.invert(maybe)))
    missing = values.null_count if is_int else 0  # a missing value is never an integer
    if len(hopeless):
        _, bad = _parse_text(values.filter(maybe).to_pandas(), target, time_format)
        return None, len(hopeless) + int(bad.sum()) + missing, _shown(hopeless)
    text = values.to_pandas()
    parsed, bad = _parse_text(text, target, time_format)
    if bad.any():
        return None, int(bad.sum()), _shown(text[bad])
    try:
        return pa.chunked_array([pc.cast(pa.array(parsed, from_pandas=True), target, safe=True)]), 0, ()
    except _CAST_ERRORS:  # e.g. an integer beyond int64
        return None, int(text.notna().sum()), _shown(text.dropna())


# A superset of the text pandas reads as a number: a value it does not match is certainly not one.
_MAYBE_NUMBER = r"\d|^\s*[-+]?(inf|infinity|nan)\s*$"


def _parse_text(text: pd.Series, target: pa.DataType, time_format: str) -> tuple[pd.Series, pd.Series]:
    """(parsed values, which do not parse) of text as `target`: times strictly in `time_format`, numbers
    as pandas reads them; for an integer a missing or fractional value does not parse either."""
    if pa.types.is_timestamp(target):
        parsed = times_or_nat(text, time_format)
        return parsed, parsed.isna() & text.notna()
    parsed = pd.to_numeric(text, errors="coerce")
    bad = parsed.isna() & text.notna()
    if pa.types.is_integer(target):
        bad |= parsed.isna() | (parsed != parsed.round())
    return parsed, bad


def _is_text(t: pa.DataType) -> bool:
    return pa.types.is_string(t) or pa.types.is_large_string(t)


def _shown(values) -> tuple[str, ...]:
    """A few distinct values for a report ("<missing>" for a missing one)."""
    s = values.to_pandas() if isinstance(values, pa.ChunkedArray | pa.Array) else values
    return tuple("<missing>" if pd.isna(v) else str(v)[:40] for v in pd.unique(s.head(1000))[:MAX_EXAMPLES])


# ---- checks --------------------------------------------------------------------------------------


def row_hashes(df: pd.DataFrame, columns: list[str]) -> pd.Series:
    """One 64-bit hash per row over `columns` (the identity of a record for duplicate checks)."""
    return pd.util.hash_pandas_object(df[columns], index=False)


def known_row_hashes(data_dir: Path, columns: list[str], exclude: str, chunk_rows: int) -> np.ndarray:
    """The distinct row hashes of data/'s files (all but `exclude`), sorted: 8 bytes a row, read a chunk
    at a time."""
    parts = [
        row_hashes(chunk, columns).to_numpy()
        for f in data_files(data_dir)
        if f.name != exclude
        for chunk in read_chunks(f, chunk_rows, columns)
    ]
    return np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.uint64)


def is_known(hashes: pd.Series, known: np.ndarray) -> np.ndarray:
    """Which of `hashes` are in `known` (sorted distinct hashes)."""
    if not len(known):
        return np.zeros(len(hashes), dtype=bool)
    h = hashes.to_numpy()
    pos = np.minimum(np.searchsorted(known, h), len(known) - 1)
    return known[pos] == h


class BatchCheck:
    """The checks of one batch fed a chunk at a time: column types (conform_table's refusals), schema
    (ChunkValidator), rows already in data/ (`known`, from known_row_hashes), and, as warnings, categories
    the model never saw (up to MAX_CLASSES_SEEN each)."""

    def __init__(self, params: Params, profile: dict, known: np.ndarray, source: str) -> None:
        self.params, self.known, self.source = params, known, source
        self.validator = ChunkValidator(params)
        self.refused: dict[tuple[str, str], Violation] = {}
        self.duplicates = 0
        self.seen = {
            col: set(profile.get("columns", {}).get(col, {}).get("categories", {}))
            for col in params.features.categorical
        }
        self.new: dict[str, set[str]] = {col: set() for col in self.seen}

    def add(self, chunk: pd.DataFrame, refused: Iterable[Violation] = ()) -> None:
        for v in refused:
            self.refused[(v.column, v.rule)] = merge_violations(self.refused.get((v.column, v.rule)), v)
        self.validator.add(chunk, skip={c for c, _ in self.refused})
        key = self.params.record_columns
        if len(self.known) and not self.refused and not self.validator.found:  # else refused anyway
            self.duplicates += int(is_known(row_hashes(chunk, key), self.known).sum())
        for col, seen in self.seen.items():
            new = self.new[col]
            if seen and col in chunk.columns and len(new) <= MAX_CLASSES_SEEN:
                new.update(set(chunk[col].dropna().astype(str).unique()) - seen)

    def result(self) -> tuple[list[Violation], list[str]]:
        """(violations, warnings) of every chunk added."""
        s = self.source
        violations = [
            *self.refused.values(),
            *(Violation(v.column, v.rule, v.count, v.examples, s) for v in self.validator.violations()),
        ]
        if not violations and self.duplicates:
            violations.append(Violation("<rows>", "duplicates rows already in data/", self.duplicates, (), s))
        warnings = []
        for col, new in self.new.items():
            if new:
                more = "more than " if len(new) > MAX_CLASSES_SEEN else ""
                warnings.append(
                    f"{col}: {more}{min(len(new), MAX_CLASSES_SEEN)} categories not in the training profile "
                    f"(e.g. {', '.join(sorted(new)[:3])})"
                )
        return violations, warnings


def check_batch(
    batch: pd.DataFrame, params: Params, profile: dict, known: np.ndarray, source: str
) -> tuple[list[Violation], list[str]]:
    """Schema violations, rows already in data/, and (as warnings) categories the model never saw, of a
    batch already in memory (BatchCheck with one chunk)."""
    check = BatchCheck(params, profile, known, source)
    check.add(batch)
    return check.result()


def check_landed(path: Path, params: Params, profile: dict, data_dir: Path) -> BatchVerdict:
    """Everything a landed file must pass before data/ takes it in, in memory bounded by
    `retrain.chunk_rows`: its size (from stat, before reading), its row count (a Parquet footer's at once,
    a CSV's as the count passes the limit), then chunk by chunk data/'s column types, the schema and rows
    already in data/. A file that cannot be read is refused naming why."""
    cfg, name = params.retrain, path.name
    mb = path.stat().st_size / 1e6
    if mb > cfg.max_batch_mb:
        too_big = _limit(f"{mb:.1f} MB, above max_batch_mb {cfg.max_batch_mb:g}", 0, name)
        return BatchVerdict(path, 0, [too_big])
    stated = declared_rows(path)
    if stated is not None and stated > cfg.max_batch_rows:
        return BatchVerdict(path, stated, [_too_many_rows(stated, cfg.max_batch_rows, name)])
    own = data_name(path)
    schema = data_schema(data_dir, exclude=own)
    known = known_row_hashes(data_dir, params.record_columns, own, cfg.chunk_rows)
    check = BatchCheck(params, profile, known, name)
    rows = 0
    try:
        for table in landed_tables(path, schema, cfg.chunk_rows):
            rows += table.num_rows
            if rows > cfg.max_batch_rows:
                return BatchVerdict(path, rows, [_too_many_rows(rows, cfg.max_batch_rows, name)])
            conformed, refused = conform_table(table, schema, params.dataset.time_format, name)
            del table
            check.add(arrow_to_frame(conformed), refused)
    except DataError as exc:
        return BatchVerdict(path, rows, [Violation("<file>", f"unreadable: {exc}", 0, (), name)])
    violations, warnings = check.result()
    return BatchVerdict(path, rows, violations, warnings)


def _too_many_rows(rows: int, limit: int, source: str) -> Violation:
    return _limit(f"more rows than max_batch_rows {limit}", rows, source)


def _limit(what: str, count: int, source: str) -> Violation:
    return Violation(
        "<file>",
        f"{what} (rule: retrain limits on a landed file; split it into smaller batches)",
        count,
        (),
        source,
    )


def landed_time_max(path: Path, time_column: str, time_format: str, chunk_rows: int) -> pd.Timestamp | None:
    """The newest time a landed file holds (read a chunk at a time, only its time column); None when it
    has none that parses or cannot be read (the retrain flow will quarantine it, saying why)."""
    latest = None
    try:
        for table in landed_tables(path, None, chunk_rows, columns=[time_column]):
            found = times_or_nat(arrow_to_frame(table)[time_column], time_format).max()
            if not pd.isna(found):
                latest = found if latest is None else max(latest, found)
    except DataError:
        return None
    return latest


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


def conformed_tables(path: Path, params: Params, data_dir: Path) -> Iterator[pa.Table]:
    """A landed file's chunks with data/'s column types, as take_into_data writes them; a chunk that no
    longer conforms (data/ changed since the batch was checked) is a DataError naming the rule."""
    schema = data_schema(data_dir, exclude=data_name(path))
    for table in landed_tables(path, schema, params.retrain.chunk_rows):
        conformed, refused = conform_table(table, schema, params.dataset.time_format, path.name)
        if refused:
            raise DataError("; ".join(v.message() for v in refused))
        yield conformed


def take_into_data(tables: Iterable[pa.Table], path: Path, data_dir: Path) -> Path:
    """Write an accepted batch's chunks under data/ as Parquet, one row group each (the same chunks give
    the same bytes); the landing file stays until the commit."""
    dest = data_dir / data_name(path)
    write_tables(tables, dest)
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
