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

import re
import shutil
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field, replace
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
    read_frame,
    write_frame,
    write_tables,
)
from mlpipe.data.naming import data_names, preferred_name
from mlpipe.data.sources import times_or_nat
from mlpipe.data.validation import (
    MAX_CLASSES_SEEN,
    MAX_EXAMPLES,
    ChunkValidator,
    Violation,
    bad_share_violation,
    expectation_notes,
    is_row_rule,
    merge_violations,
    outside_expected,
    render_report,
)
from mlpipe.data.zone import (  # noqa: F401 - landed_batches: landing's API
    BATCH_SUFFIXES,
    FEEDBACK_PREFIX,
    landed_batches,
)
from mlpipe.errors import AlreadyExists, DataError, MissingInput
from mlpipe.runtime.hashing import sha256_file

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
    """The outcome of checking one landed batch: refused whole (`violations`), or accepted with the rows that
    break a row rule set aside (`set_aside`: those rules, `set_aside_rows`: how many rows) and the rows
    outside the training range flagged (`flagged`, one line a column)."""

    path: Path
    rows: int
    violations: list[Violation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    set_aside: list[Violation] = field(default_factory=list)
    set_aside_rows: int = 0
    flagged: list[str] = field(default_factory=list)

    @property
    def accepted(self) -> bool:
        return not self.violations

    def as_dict(self) -> dict:
        """Plain values (a Prefect task's result)."""
        return {**asdict(self), "path": str(self.path)}

    @classmethod
    def from_dict(cls, d: dict) -> BatchVerdict:
        def violations(key: str) -> list[Violation]:
            return [Violation(**{**v, "examples": tuple(v["examples"])}) for v in d.get(key, [])]

        return cls(
            Path(d["path"]),
            d["rows"],
            violations("violations"),
            list(d.get("warnings", [])),
            violations("set_aside"),
            d.get("set_aside_rows", 0),
            list(d.get("flagged", [])),
        )


def data_schema(data_dir: Path) -> pa.Schema | None:
    """The column types the files of data/ hold (their schemas unified), or None when there are none."""
    schemas = [pq.read_schema(f) for f in data_files(data_dir)]
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


def known_row_hashes(data_dir: Path, columns: list[str], chunk_rows: int) -> np.ndarray:
    """The distinct row hashes of data/'s files, sorted: 8 bytes a row, read a chunk at a time."""
    parts = [
        row_hashes(chunk, columns).to_numpy()
        for f in data_files(data_dir)
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
    the model never saw (up to MAX_CLASSES_SEEN each). A batch is judged as a batch: a rule of the batch
    (a column, a type, the target's classes, the null rate, duplicates) refuses it whole; rows that break a
    row rule (a physical limit, a required value, an empty text) are set aside unless their share passes
    `validate.max_bad_row_share`; rows outside the training profile's range are counted, never refused."""

    def __init__(self, params: Params, profile: dict, known: np.ndarray, source: str) -> None:
        self.params, self.known, self.source, self.profile = params, known, source, profile
        self.validator = ChunkValidator(params)
        self.refused: dict[tuple[str, str], Violation] = {}
        self.duplicates = 0
        self.outside: dict[str, tuple[int, int]] = {}
        self.seen = {
            col: set(profile.get("columns", {}).get(col, {}).get("categories", {}))
            for col in params.features.categorical
        }
        self.new: dict[str, set[str]] = {col: set() for col in self.seen}

    def add(self, chunk: pd.DataFrame, refused: Iterable[Violation] = ()) -> None:
        for v in refused:
            self.refused[(v.column, v.rule)] = merge_violations(self.refused.get((v.column, v.rule)), v)
        bad = self.validator.add(chunk, skip={c for c, _ in self.refused})
        kept = chunk[~bad] if bad.any() else chunk  # the rows data/ would take
        key = self.params.record_columns
        if len(self.known) and not self.refused and not self._refused_whole():  # else refused anyway
            self.duplicates += int(is_known(row_hashes(kept, key), self.known).sum())
        for col, (low, high) in outside_expected(kept, self.profile).items():
            was = self.outside.get(col, (0, 0))
            self.outside[col] = (was[0] + low, was[1] + high)
        for col, seen in self.seen.items():
            new = self.new[col]
            if seen and col in chunk.columns and len(new) <= MAX_CLASSES_SEEN:
                new.update(set(chunk[col].dropna().astype(str).unique()) - seen)

    def _refused_whole(self) -> bool:
        return any(not is_row_rule(rule) for _, rule in self.validator.found)

    def verdict(self, path: Path, rows: int) -> BatchVerdict:
        """The verdict on every chunk added: refused whole, or accepted with its bad rows set aside."""
        s = self.source
        found = [
            *self.refused.values(),
            *(Violation(v.column, v.rule, v.count, v.examples, s) for v in self.validator.violations()),
        ]
        row_rules = [v for v in found if is_row_rule(v.rule)]
        too_many = bad_share_violation(
            self.validator.bad_rows, self.validator.rows, self.params.validate_.max_bad_row_share
        )
        if too_many is not None:
            found.append(Violation(too_many.column, too_many.rule, too_many.count, (), s))
        if len(found) > len(row_rules):  # a rule of the batch: refused whole, every rule named
            return BatchVerdict(path, rows, found, self.warnings())
        if self.duplicates:
            dup = Violation("<rows>", "duplicates rows already in data/", self.duplicates, (), s)
            return BatchVerdict(path, rows, [*row_rules, dup], self.warnings())
        flagged = expectation_notes(self.outside, self.profile)
        return BatchVerdict(path, rows, [], self.warnings(), row_rules, self.validator.bad_rows, flagged)

    def result(self) -> tuple[list[Violation], list[str]]:
        """(violations refusing the batch, warnings) of every chunk added."""
        verdict = self.verdict(Path(self.source), self.validator.rows)
        return verdict.violations, verdict.warnings

    def warnings(self) -> list[str]:
        """Categories the training profile never saw, one line a column."""
        warnings = []
        for col, new in self.new.items():
            if new:
                more = "more than " if len(new) > MAX_CLASSES_SEEN else ""
                warnings.append(
                    f"{col}: {more}{min(len(new), MAX_CLASSES_SEEN)} categories not in the training profile "
                    f"(e.g. {', '.join(sorted(new)[:3])})"
                )
        return warnings


def check_batch(
    batch: pd.DataFrame, params: Params, profile: dict, known: np.ndarray, source: str
) -> tuple[list[Violation], list[str]]:
    """The violations refusing a batch already in memory (a rule of the batch, bad rows above
    max_bad_row_share, rows already in data/), and (as warnings) categories the model never saw (BatchCheck
    with one chunk)."""
    check = BatchCheck(params, profile, known, source)
    check.add(batch)
    return check.result()


def check_landed(path: Path, params: Params, profile: dict, data_dir: Path) -> BatchVerdict:
    """Everything a landed file must pass before data/ takes it in, in memory bounded by
    `retrain.chunk_rows`: its size (from stat, before reading), its row count (a Parquet footer's at once,
    a CSV's as the count passes the limit), then chunk by chunk data/'s column types, the schema and rows
    already in data/ (BatchCheck: what refuses the batch, which rows are set aside, which flagged). A file
    that cannot be read is refused naming why."""
    cfg, name = params.retrain, path.name
    mb = path.stat().st_size / 1e6
    if mb > cfg.max_batch_mb:
        too_big = _limit(f"{mb:.1f} MB, above max_batch_mb {cfg.max_batch_mb:g}", 0, name)
        return BatchVerdict(path, 0, [too_big])
    stated = declared_rows(path)
    if stated is not None and stated > cfg.max_batch_rows:
        return BatchVerdict(path, stated, [_too_many_rows(stated, cfg.max_batch_rows, name)])
    # data/ is what data.dvc records here (data.recorded.keep_as_recorded ran first): every file counts
    schema = data_schema(data_dir)
    known = known_row_hashes(data_dir, params.record_columns, cfg.chunk_rows)
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
    return check.verdict(path, rows)


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
    dest = _free_path(quarantine_dir, path.name)
    report = render_report(None, verdict.violations, path.name)
    dest.with_name(dest.name + REPORT_SUFFIX).write_text(report, encoding="utf-8")
    shutil.move(str(path), dest)
    return dest


def _free_path(directory: Path, name: str) -> Path:
    """`directory/name`, or `stem.N.suffix` with the first N not taken: nothing is ever overwritten."""
    dest, stem, suffix = directory / name, Path(name).stem, Path(name).suffix
    n = 1
    while dest.exists():
        dest = directory / f"{stem}.{n}{suffix}"
        n += 1
    return dest


RESOLVED_DIR = "resolved"  # under quarantine/: copies of batches accepted since, under the same name


def resolve_quarantined(name: str, quarantine_dir: Path) -> list[Path]:
    """Move the quarantined copies of batch `name` (`name` and its numbered copies `stem.N.suffix`, each with
    its report) to quarantine/resolved/, once a batch of that name was taken in: a fixed batch leaves
    quarantine, and nothing is deleted. Returns where they went."""
    if not quarantine_dir.is_dir():
        return []
    p = Path(name)
    copy = re.compile(rf"{re.escape(p.stem)}(\.\d+)?{re.escape(p.suffix)}")
    moved = []
    for found in sorted(f for f in quarantine_dir.iterdir() if f.is_file() and copy.fullmatch(f.name)):
        (quarantine_dir / RESOLVED_DIR).mkdir(exist_ok=True)
        dest = _free_path(quarantine_dir / RESOLVED_DIR, found.name)
        report = found.with_name(found.name + REPORT_SUFFIX)
        if report.exists():
            moved.append(Path(shutil.move(report, dest.with_name(dest.name + REPORT_SUFFIX))))
        moved.append(Path(shutil.move(found, dest)))
    return moved


REPORT_SUFFIX = ".report.md"


def data_name(path: Path) -> str:
    """The file name a landed batch gets under data/ when no file holds it (naming.preferred_name); the
    name it is taken in under is data_names'."""
    return preferred_name(path.name)


def conformed_tables(path: Path, params: Params, data_dir: Path) -> Iterator[pa.Table]:
    """A landed file's chunks with data/'s column types, as take_into_data writes them; a chunk that no
    longer conforms (data/ changed since the batch was checked) is a DataError naming the rule."""
    schema = data_schema(data_dir)
    for table in landed_tables(path, schema, params.retrain.chunk_rows):
        conformed, refused = conform_table(table, schema, params.dataset.time_format, path.name)
        if refused:
            raise DataError("; ".join(v.message() for v in refused))
        yield conformed


def take_into_data(tables: Iterable[pa.Table], path: Path, data_dir: Path, name: str | None = None) -> Path:
    """Write an accepted batch's chunks under data/ as Parquet, one row group each (the same chunks give
    the same bytes), named `name` (data_names'; its preferred name when None); the landing file stays until
    the commit."""
    dest = data_dir / (name or data_name(path))
    write_tables(tables, dest)
    return dest


ROWS_SUFFIX = ".rows.parquet"  # in quarantine/: the rows of a batch set aside, `<batch stem>.rows.parquet`


def rows_name(data_file: str) -> str:
    """The file in quarantine/ of the rows set aside from the batch taken in as `data_file` (data/ names
    are unique, so are these)."""
    return data_file.removesuffix(DATA_SUFFIX) + ROWS_SUFFIX


@dataclass(frozen=True)
class TakenBatch:
    """What data/ took of one accepted batch, and where its rows set aside went. `landed`: the landing
    file's name, rows and sha256; `same_as`: the batch of this run with the same bytes, whose file holds its
    rows."""

    data_file: Path
    rows: int
    rows_file: Path | None = None
    set_aside: int = 0
    landed: str = ""
    landed_rows: int = 0
    same_as: str | None = None
    sha256: str = ""

    def line(self) -> str:
        """What went in, as the commit message names it: "b2.csv -> b2-1.parquet (500 rows)"."""
        dest = self.data_file.name
        rows = f"{self.rows:,} rows" + (f", {self.set_aside:,} set aside" if self.set_aside else "")
        if self.same_as:
            return f"{self.landed} (the same file as {self.same_as}, taken once as {dest})"
        return f"{self.landed} ({rows})" if dest == self.landed else f"{self.landed} -> {dest} ({rows})"


def take_batches(
    verdicts: list[BatchVerdict], params: Params, data_dir: Path, quarantine_dir: Path
) -> list[TakenBatch]:
    """Write accepted batches under data/ in order (take_batch), each under a name no file of data/ and no
    other batch holds (naming.data_names); a landed file with the same bytes as an earlier one of these is
    not written twice (its rows are that batch's: every landed row goes in once)."""
    held = [f.name for f in data_files(data_dir)]
    taken: list[TakenBatch] = []
    seen: dict[str, TakenBatch] = {}
    for verdict in verdicts:
        digest = sha256_file(verdict.path)
        if digest in seen:
            first = seen[digest]
            taken.append(replace(first, landed=verdict.path.name, same_as=first.landed))
            continue
        (name,) = data_names([verdict.path.name], held)
        held.append(name)
        # conformed_tables refuses (DataError) a batch the check accepted only if data/ changed since
        batch = take_batch(verdict, params, data_dir, quarantine_dir, name)
        seen[digest] = replace(batch, sha256=digest)
        taken.append(seen[digest])
    return taken


def take_batch(
    verdict: BatchVerdict, params: Params, data_dir: Path, quarantine_dir: Path, name: str | None = None
) -> TakenBatch:
    """Write an accepted batch under data/ as `name` (its preferred name when None) a chunk at a time
    (conformed_tables, take_into_data); when the check set rows aside, each chunk's rows that break a row
    rule go to quarantine/<data stem>.rows.parquet instead, beside a report naming each rule, its count and
    examples: every landed row is in one of the two. The same chunks give the same bytes."""
    path = verdict.path
    name = name or data_name(path)
    tables = conformed_tables(path, params, data_dir)
    landed = {"landed": path.name, "landed_rows": verdict.rows}
    if not verdict.set_aside_rows:
        return TakenBatch(take_into_data(tables, path, data_dir, name), verdict.rows, **landed)
    validator = ChunkValidator(params)
    kept = 0

    def good_rows(aside: _TablesWriter) -> Iterator[pa.Table]:
        nonlocal kept
        for table in tables:
            # the checked columns copied to pandas (arrow_to_frame would consume the table that is written)
            checked = [c for c in table.column_names if c in validator.schema.columns]
            bad = pa.array(validator.add(table.select(checked).to_pandas(split_blocks=True)))
            aside.write(table.filter(bad))
            table = table.filter(pc.invert(bad))
            kept += table.num_rows
            yield table

    with _TablesWriter(quarantine_dir / rows_name(name)) as aside:
        dest = take_into_data(good_rows(aside), path, data_dir, name)
    taken = TakenBatch(dest, kept, aside.path, aside.rows, **landed)
    report = aside.path.with_name(aside.path.name + REPORT_SUFFIX)
    report.write_text(
        render_rows_report(verdict, taken, params.validate_.max_bad_row_share), encoding="utf-8"
    )
    return taken


class _TablesWriter:
    """Tables of one schema written as one Parquet file (as write_tables writes them) while another file is
    written from the same chunks; the file appears only once complete, and not at all without rows."""

    def __init__(self, path: Path) -> None:
        self.path, self.tmp = path, path.with_name(path.name + ".tmp")
        self.writer: pq.ParquetWriter | None = None
        self.rows = 0

    def write(self, table: pa.Table) -> None:
        if not table.num_rows:
            return
        if self.writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.writer = pq.ParquetWriter(self.tmp, table.schema, compression="zstd")
        self.writer.write_table(table)
        self.rows += table.num_rows

    def __enter__(self) -> _TablesWriter:
        return self

    def __exit__(self, exc_type, *_) -> None:
        if self.writer is not None:
            self.writer.close()
        if exc_type is not None:
            self.tmp.unlink(missing_ok=True)
        elif self.writer is not None:
            self.tmp.replace(self.path)


def render_rows_report(verdict: BatchVerdict, taken: TakenBatch, max_share: float) -> str:
    """Markdown report of the rows set aside from an accepted batch: how many, where, and each rule."""
    name = verdict.path.name
    lines = [
        f"# Rows set aside: {name}",
        "",
        f"**{taken.set_aside} of {verdict.rows} rows set aside** in `{rows_name(taken.data_file.name)}`"
        f": each breaks a row rule below (a physical limit of `validate.ranges`, a required value, an empty "
        f"text). The other {taken.rows} rows were taken into `data/{taken.data_file.name}` (rule: a batch "
        f"whose share of such rows is at most validate.max_bad_row_share {max_share:g} keeps its good rows).",
        "",
        "| source | column | rule | offending rows | examples |",
        "|---|---|---|---|---|",
        *(
            f"| {v.source} | {v.column} | {v.rule} | {v.count} | {', '.join(v.examples)} |"
            for v in verdict.set_aside
        ),
    ]
    return "\n".join(lines) + "\n"


def describe_taken(verdict: BatchVerdict, taken: TakenBatch, quarantine_shown: str) -> str:
    """One line of what data/ took of a batch, e.g. "b2.csv: 13,937 rows taken into data/b2-1.parquet, 3 set
    aside (depth above max 74.68) -> quarantine/b2-1.rows.parquet"."""
    if taken.same_as:
        where = f"data/{taken.data_file.name}"
        return f"{verdict.path.name}: the same file as {taken.same_as}, its rows taken once ({where})"
    line = f"{verdict.path.name}: {taken.rows:,} rows taken into data/{taken.data_file.name}"
    if taken.set_aside and taken.rows_file is not None:
        rules = [f"{v.column} {v.rule}" for v in verdict.set_aside]
        shown = ", ".join(rules[:3]) + (f" and {len(rules) - 3} more rules" if len(rules) > 3 else "")
        line += f", {taken.set_aside:,} set aside ({shown}) -> {quarantine_shown}/{taken.rows_file.name}"
    return line


def set_aside_initial_rows(
    df: pd.DataFrame, params: Params, quarantine_dir: Path, name: str = "initial"
) -> pd.DataFrame:
    """The source's initial rows judged as a landed batch is: rows that break a row rule (checked
    `retrain.chunk_rows` at a time) go to quarantine/<name>.rows.parquet beside a report, the rest is
    returned for data/. When their share is above validate.max_bad_row_share every row is returned as it
    came, and the validate stage refuses the data naming each rule, as for any broken feed."""
    frame = df.reset_index(drop=True)
    validator, step = ChunkValidator(params), params.retrain.chunk_rows
    parts = [validator.add(frame.iloc[i : i + step]) for i in range(0, len(frame), step)]
    bad = np.concatenate(parts) if parts else np.zeros(0, dtype=bool)
    if not bad.any() or bad_share_violation(int(bad.sum()), len(frame), params.validate_.max_bad_row_share):
        return df
    dest = quarantine_dir / f"{name}{ROWS_SUFFIX}"
    write_frame(frame[bad].reset_index(drop=True), dest)
    rules = [v for v in validator.violations() if is_row_rule(v.rule)]
    report = render_report(None, rules, f"{name}: {int(bad.sum())} of {len(frame)} source rows set aside")
    dest.with_name(dest.name + REPORT_SUFFIX).write_text(report, encoding="utf-8")
    return frame[~bad].reset_index(drop=True)


def source_position(data_dir: Path, landing_dir: Path, params: Params) -> pd.Timestamp | None:
    """The newest time of the source's rows in data/ or waiting in the landing zone (only their time column
    read; landed files over retrain.max_batch_mb and batches of labelled traffic aside); before any, the hour
    before the initial period's end; None for a source without a time column or a period."""
    dataset, cfg = params.dataset, params.retrain
    time_col = dataset.time_column
    if time_col is None:
        return None
    own = [f for f in data_files(data_dir) if not f.name.startswith(FEEDBACK_PREFIX)]
    stamps = [read_frame(f, [time_col])[time_col].max() for f in own]
    # Landed files within the size limit, a chunk at a time; one without times (junk the next run will
    # quarantine) says nothing about where the data ends.
    landed = [
        landed_time_max(f, time_col, dataset.time_format, cfg.chunk_rows)
        for f in landed_batches(landing_dir)
        if f.stat().st_size / 1e6 <= cfg.max_batch_mb and not f.name.startswith(FEEDBACK_PREFIX)
    ]
    stamps = [t for t in [*stamps, *landed] if t is not None and not pd.isna(t)]
    if stamps:
        return max(stamps)
    if dataset.initial_period is None:
        return None
    return pd.Timestamp(dataset.initial_period.end, tz="UTC") - pd.Timedelta(hours=1)


def release_next_period(
    load_period, latest: pd.Timestamp, time_column: str | None, freq: str, landing_dir: Path
) -> Path | None:
    """Replay: write the source's period after `latest` into the landing zone; None when the source is
    exhausted."""
    start, end = next_period(latest, freq)
    written = materialise_period(load_period, start, end, landing_dir, time_column, freq)
    return written[0] if written else None


def ingest_file(src: Path, landing_dir: Path) -> Path:
    """Copy a user's file into the landing zone (atomically: a half-copied file is never collected). A
    name data/ holds already is no reason to refuse: the run takes it in under a free one (data_names)."""
    if src.suffix not in BATCH_SUFFIXES:
        raise DataError(
            f"{src}: unsupported file type {src.suffix!r} (rule: one of {', '.join(BATCH_SUFFIXES)})"
        )
    if not src.is_file():
        raise MissingInput(f"{src}: no such file (rule: ingest takes an existing Parquet or CSV file)")
    landing_dir.mkdir(parents=True, exist_ok=True)
    dest = landing_dir / src.name
    if dest.exists():
        raise AlreadyExists(
            f"{dest}: a batch of that name is waiting already "
            "(rule: one landed file a name; rename the file, or run first)"
        )
    tmp = landing_dir / f".{src.name}.part"
    shutil.copyfile(src, tmp)
    tmp.replace(dest)
    return dest
