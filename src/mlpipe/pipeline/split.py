"""The split algorithms the `split` stage and estimator selection cut with: by time (the past trains, the most
recent rows test) or, for data without a time order, by a seeded hash of each row's values."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mlpipe.data.frames import require_times
from mlpipe.errors import DataError


def time_split_positions(times: np.ndarray, test_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of train (the past) and test (the most recent `test_fraction` of rows), each in
    time order (stable: ties keep file order); the first test row holds the cutoff time. No timestamp is
    on both sides. Time-ordered data is never shuffled across the cut: a random split would let the model
    see the future of the days it is tested on."""
    if len(times) == 0:
        raise DataError("no rows to split (rule: split needs data)")
    order = np.argsort(times, kind="stable")
    ordered = times[order]
    cutoff = ordered[int(len(ordered) * (1 - test_fraction))]
    n_train = int(np.searchsorted(ordered, cutoff, side="left"))
    return order[:n_train], order[n_train:]


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """A fixed 64-bit mixer (SplitMix64's finaliser): nearby inputs give unrelated outputs."""
    with np.errstate(over="ignore"):
        x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return x ^ (x >> np.uint64(31))


def random_split_positions(
    rows: pd.DataFrame, test_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Row positions of a seeded random split (for data without a time order), each in row order.

    A row's side is drawn from a seeded hash of its values, not from its position: as batches are added
    every earlier row keeps its side, so the champion's training rows never become the next test rows (a
    permutation of positions would mix them in and flatter the champion at the gate), and equal rows
    share a side. The test share is `test_fraction` in expectation."""
    hashed = pd.util.hash_pandas_object(rows, index=False).to_numpy(dtype=np.uint64)
    with np.errstate(over="ignore"):
        key = np.uint64(seed) * np.uint64(0x9E3779B97F4A7C15)
    unit = (_splitmix64(hashed ^ key) >> np.uint64(11)).astype(np.float64) / float(1 << 53)
    is_test = unit < test_fraction
    return np.flatnonzero(~is_test), np.flatnonzero(is_test)


def split_by_time(
    df: pd.DataFrame, time_column: str, test_fraction: float
) -> tuple[pd.DataFrame, pd.DataFrame, pd.Timestamp]:
    """time_split_positions applied to a frame: (train, test, cutoff)."""
    require_times(time_column, int(df[time_column].isna().sum()))
    col = df[time_column]
    times = (
        col.dt.tz_convert("UTC").dt.tz_localize(None) if isinstance(col.dtype, pd.DatetimeTZDtype) else col
    )
    train_pos, test_pos = time_split_positions(times.to_numpy(), test_fraction)
    cutoff = col.iloc[test_pos[0]]
    return df.take(train_pos).reset_index(drop=True), df.take(test_pos).reset_index(drop=True), cutoff


def split_random(df: pd.DataFrame, test_fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """random_split_positions applied to a frame (its rows' values decide): (train, test)."""
    train_pos, test_pos = random_split_positions(df, test_fraction, seed)
    return df.take(train_pos).reset_index(drop=True), df.take(test_pos).reset_index(drop=True)
