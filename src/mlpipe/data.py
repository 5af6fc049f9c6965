"""Dataset loading, period batching, splitting and deterministic files."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

DATA_SUFFIX = ".parquet"


def period_label(ts: pd.Series, freq: str) -> pd.Series:
    """First day of each timestamp's period (UTC): the 1st of the month, or the Monday of the ISO week.
    ISO dates sort in time order, so file names built from them do too."""
    day = ts.dt.tz_convert("UTC").dt.tz_localize(None).dt.normalize() if ts.dt.tz is not None else ts.dt.normalize()
    start = day.dt.to_period("M").dt.start_time if freq == "month" else day - pd.to_timedelta(day.dt.dayofweek, unit="D")
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
    _require_times(df, time_column)
    labels = period_label(df[time_column], freq)
    return {str(label): part.reset_index(drop=True) for label, part in df.groupby(labels, sort=True)}


def _require_times(df: pd.DataFrame, time_column: str) -> None:
    missing = int(df[time_column].isna().sum())
    if missing:
        raise ValueError(f"{time_column}: {missing} rows without a time (rule: every row needs a time to be batched or split)")


def write_frame(df: pd.DataFrame, path: Path) -> None:
    """Write Parquet deterministically: same frame and library versions give the same bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    df.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
    tmp.replace(path)


def read_frame(path: Path) -> pd.DataFrame:
    return pd.read_parquet(path, engine="pyarrow")


def data_files(data_dir: Path) -> list[Path]:
    """The data files of a directory in name order (names carry the period, so this is time order)."""
    return sorted(p for p in data_dir.glob(f"*{DATA_SUFFIX}") if p.is_file())


def read_data_dir(data_dir: Path) -> pd.DataFrame:
    """All data files of a directory as one frame, in file-name order."""
    files = data_files(data_dir)
    if not files:
        raise FileNotFoundError(f"{data_dir}: no *{DATA_SUFFIX} files (rule: run `mlpipe bootstrap` first)")
    return pd.concat([read_frame(p) for p in files], ignore_index=True)


def materialise_period(load_period, start: date, end: date, data_dir: Path, time_column: str, freq: str) -> list[Path]:
    """Write the source's rows in [start, end) under data_dir as one file per period, each named after
    the first day it covers (`batch-YYYY-MM-DD`); return the files."""
    df = load_period(start, end)
    written = []
    for label, part in partition_by_period(df, time_column, freq).items():
        path = data_dir / f"batch-{max(label, start.isoformat())}{DATA_SUFFIX}"
        write_frame(part, path)
        written.append(path)
    return written


def split_by_time(df: pd.DataFrame, time_column: str, test_fraction: float) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """Train on the past, test on the most recent `test_fraction` of rows; no timestamp on both sides.

    Time-ordered data is never shuffled across the cut: a random split would let the model see the
    future of the days it is tested on.
    """
    _require_times(df, time_column)
    if df.empty:
        raise ValueError(f"{time_column}: no rows to split (rule: split needs data)")
    ordered = df.sort_values(time_column, kind="mergesort")
    cutoff = ordered[time_column].iloc[int(len(ordered) * (1 - test_fraction))]
    train = ordered[ordered[time_column] < cutoff].reset_index(drop=True)
    test = ordered[ordered[time_column] >= cutoff].reset_index(drop=True)
    return train, test, cutoff


def split_random(df: pd.DataFrame, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seeded random split (for data without a time order)."""
    rng = np.random.default_rng(seed)
    is_test = np.zeros(len(df), dtype=bool)
    is_test[rng.permutation(len(df))[: int(round(len(df) * test_fraction))]] = True
    return df[~is_test].reset_index(drop=True), df[is_test].reset_index(drop=True)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
