"""Where rows come from, as `dataset.source` says: the bundled demo, files, SQL, or the user's own function.

Every source gives `load_period(start, end)` (None, None: every row) returning a frame typed by the
declared schema, never guessed from one batch's values: categorical features as text, numerical ones as
float64, the time column parsed strictly in its declared `time_format` (a value that does not parse is
an error naming the column, never a silent 1970)."""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd

from mlpipe.config import DatasetCfg, FeaturesCfg, Params
from mlpipe.data.zone import glob_files
from mlpipe.errors import ConfigError, DataError, MissingInput

LoadPeriod = Callable[[date | None, date | None], pd.DataFrame]


def parse_times(values: pd.Series, fmt: str, column: str) -> pd.Series:
    """`values` as UTC timestamps read in the declared format; DataError naming the column and a few
    values when any present value does not parse. Numbers are times only as epoch_s / epoch_ms."""
    parsed = times_or_nat(values, fmt)
    bad = parsed.isna() & values.notna()
    if bad.any():
        examples = ", ".join(str(v)[:30] for v in values[bad].unique()[:3])
        numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
        epoch = fmt in ("epoch_s", "epoch_ms")
        hint = (
            " (numbers are times only with time_format epoch_s or epoch_ms)" if numeric and not epoch else ""
        )
        raise DataError(
            f"{column}: {int(bad.sum())} values do not parse as {fmt} (e.g. {examples}){hint} "
            f"(rule: dataset.time_format {fmt}, parsed strictly)"
        )
    return parsed


def times_or_nat(values: pd.Series, fmt: str) -> pd.Series:
    """`values` as UTC timestamps read strictly in the declared format, NaT where one does not parse."""
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]")
    if pd.api.types.is_datetime64_dtype(values):
        return values.dt.tz_localize("UTC").astype("datetime64[ns, UTC]")
    numeric = pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values)
    if fmt in ("epoch_s", "epoch_ms"):
        as_number = pd.to_numeric(values, errors="coerce")
        parsed = pd.to_datetime(as_number, unit="s" if fmt == "epoch_s" else "ms", utc=True, errors="coerce")
    elif numeric:
        parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    else:
        text = values.astype("string")
        form = "%Y-%m-%d" if fmt == "date" else "ISO8601"
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format=form)
    return parsed.astype("datetime64[ns, UTC]")


def category_text(values: pd.Series) -> pd.Series:
    """A categorical column as text, None for missing; whole numbers read as float because of a null
    (123.0) are the text "123", as a batch without a null gives."""
    present = values.notna()
    if pd.api.types.is_float_dtype(values) and (values[present] == values[present].round()).all():
        values = values.astype("Int64")
    return values.astype("string").astype(object).where(present, None)


def typed(df: pd.DataFrame, dataset: DatasetCfg, features: FeaturesCfg, source: str) -> pd.DataFrame:
    """A raw frame with the declared types: categoricals text, numericals float64, the time parsed.
    A numerical column with values that are not numbers is refused naming the column."""
    out = df.copy(deep=False)
    for col in features.categorical:
        if col in out.columns:
            out[col] = category_text(out[col])
    for col in (c for c in features.numerical if c in out.columns):
        values = out[col]
        if not pd.api.types.is_numeric_dtype(values):
            values = pd.to_numeric(out[col], errors="coerce")
            bad = values.isna() & out[col].notna()
            if bad.any():
                examples = ", ".join(str(v)[:30] for v in out[col][bad].unique()[:3])
                raise DataError(
                    f"{source}: {col}: {int(bad.sum())} values are not numbers (e.g. {examples}) "
                    "(rule: a numerical feature holds numbers)"
                )
        out[col] = values.astype("float64")
    if dataset.time_column:
        if dataset.time_column not in out.columns:
            raise DataError(
                f"{source}: time column {dataset.time_column!r} missing (rule: dataset.time_column exists)"
            )
        out[dataset.time_column] = parse_times(
            out[dataset.time_column], dataset.time_format, dataset.time_column
        )
    return out


def in_period(
    df: pd.DataFrame, time_column: str | None, start: date | None, end: date | None
) -> pd.DataFrame:
    """The rows of [start, end) (UTC days), in their order; every row without a period."""
    if time_column is None or start is None or end is None:
        return df.reset_index(drop=True)
    t = df[time_column]
    keep = (t >= pd.Timestamp(start, tz="UTC")) & (t < pd.Timestamp(end, tz="UTC"))
    return df[keep].reset_index(drop=True)


def matching_files(pattern: str, root: Path) -> list[Path]:
    """The CSV/Parquet files a path or glob names (relative to the project root), in name order."""
    found = glob_files(pattern, root)
    if not found:
        raise MissingInput(
            f"dataset.path: {pattern!r} matches no .csv or .parquet file under {root} "
            "(rule: a file or a glob of CSV/Parquet files)"
        )
    return found


def read_source_file(path: Path, features: FeaturesCfg) -> pd.DataFrame:
    """One source file; CSV categoricals read as text (a code "00123" stays text). A file that cannot be
    read is a DataError naming it."""
    try:
        if path.suffix == ".parquet":
            return pd.read_parquet(path)
        return pd.read_csv(path, dtype={c: str for c in features.categorical})
    except (ValueError, OSError, pd.errors.ParserError) as exc:
        raise DataError(f"{path}: unreadable ({' '.join(str(exc).split())[:200]})") from None


def files_source(params: Params, root: Path) -> LoadPeriod:
    def load_period(start: date | None, end: date | None) -> pd.DataFrame:
        frames = [
            typed(read_source_file(f, params.features), params.dataset, params.features, f.name)
            for f in matching_files(params.dataset.path or "", root)
        ]
        df = pd.concat(frames, ignore_index=True) if len(frames) > 1 else frames[0]
        return in_period(df, params.dataset.time_column, start, end)

    return load_period


def sql_source(dataset: DatasetCfg, features: FeaturesCfg) -> LoadPeriod:
    """`dataset.query` on the SQLAlchemy URL in $`dataset.url_env`, with :start and :end bound (UTC
    midnight timestamps of the period)."""
    env = dataset.url_env

    def load_period(start: date | None, end: date | None) -> pd.DataFrame:
        import sqlalchemy as sa

        url = os.environ.get(env)
        if not url:
            raise ConfigError(f"${env}: not set (rule: source sql reads its SQLAlchemy URL from ${env})")
        if start is None or end is None:
            raise ConfigError("source sql: no period to bind (rule: source sql needs dataset.initial_period)")
        bound = {
            "start": pd.Timestamp(start, tz="UTC").to_pydatetime(),
            "end": pd.Timestamp(end, tz="UTC").to_pydatetime(),
        }
        try:
            engine = sa.create_engine(url)
        except (sa.exc.ArgumentError, sa.exc.NoSuchModuleError) as exc:
            raise ConfigError(
                f"${env}: not a usable SQLAlchemy URL ({exc}) (rule: e.g. postgresql+psycopg://host/db)"
            ) from None
        try:
            with engine.connect() as conn:
                df = pd.read_sql(sa.text(dataset.query or ""), conn, params=bound)
        except sa.exc.SQLAlchemyError as exc:
            raise DataError(
                f"dataset.query: failed on ${env} ({' '.join(str(exc.orig or exc).split())[:200]})"
            ) from None
        finally:
            engine.dispose()
        return typed(df, dataset, features, "sql")

    return load_period


def user_source(dataset: DatasetCfg, features: FeaturesCfg, root: Path) -> LoadPeriod:
    """The user's `package.module:function`, imported from the project root."""
    module_name, _, func_name = dataset.source.partition(":")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    try:
        func = getattr(importlib.import_module(module_name), func_name)
    except Exception as exc:  # noqa: BLE001 - the user's module: ImportError, SyntaxError, its own errors
        raise ConfigError(
            f"dataset.source: {dataset.source!r} cannot be imported ({exc}) "
            "(rule: package.module:function importable from the project root)"
        ) from None

    def load_period(start: date | None, end: date | None) -> pd.DataFrame:
        try:
            df = func(start, end)
        except Exception as exc:  # noqa: BLE001 - the user's code: named, one line, not retried
            raise DataError(
                f"dataset.source {dataset.source}: raised {type(exc).__name__}: "
                f"{' '.join(str(exc).split())[:200]}"
            ) from None
        if not isinstance(df, pd.DataFrame):
            raise DataError(
                f"dataset.source {dataset.source}: returned {type(df).__name__} "
                "(rule: load_period(start, end) returns a pandas DataFrame)"
            )
        return in_period(
            typed(df, dataset, features, dataset.source),
            dataset.time_column,
            start,
            end,
        )

    return load_period


def get_source(params: Params, root: Path) -> LoadPeriod:
    """The `load_period` of the configured source."""
    source = params.dataset.source
    if source == "nycflights13":
        from mlpipe.data.adapters.nycflights13 import load_period

        return load_period
    if source == "files":
        return files_source(params, root)
    if source == "sql":
        return sql_source(params.dataset, params.features)
    return user_source(params.dataset, params.features, root)
