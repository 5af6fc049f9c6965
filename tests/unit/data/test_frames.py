"""Data batches: periods are cut by label, files are written byte-for-byte the same, splits never leak
time."""

from __future__ import annotations

import hashlib
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from mlpipe.data.frames import (
    data_files,
    materialise_period,
    partition_by_period,
    period_label,
    read_data_dir,
    read_frame,
    write_frame,
    write_table,
)
from mlpipe.pipeline.split import random_split_positions, split_by_time, split_random, time_split_positions
from mlpipe.runtime.hashing import sha256_file


def _timed(stamps: list[str]) -> pd.DataFrame:
    return pd.DataFrame({"time_hour": pd.to_datetime(stamps, utc=True), "row": range(len(stamps))})


def test_month_batches_are_labelled_by_their_first_day():
    df = _timed(
        ["2013-02-03 10:00", "2013-01-31 23:00", "2013-02-01 00:00", "2013-01-01 05:00", "2013-03-15 12:00"]
    )
    parts = partition_by_period(df, "time_hour", "month")
    assert list(parts) == ["2013-01-01", "2013-02-01", "2013-03-01"]
    # Each batch keeps the incoming row order and gets a fresh index.
    assert parts["2013-01-01"]["row"].tolist() == [1, 3]
    assert parts["2013-02-01"]["row"].tolist() == [0, 2]
    assert parts["2013-02-01"].index.tolist() == [0, 1]
    assert sum(len(p) for p in parts.values()) == len(df)


def test_week_batches_use_iso_weeks_across_the_new_year():
    # 2012-12-31 is a Monday and belongs to ISO week 1 of 2013; 2013-01-06 is that week's Sunday.
    df = _timed(["2012-12-31 10:00", "2013-01-06 10:00", "2013-01-07 10:00", "2013-03-04 10:00"])
    parts = partition_by_period(df, "time_hour", "week")
    assert list(parts) == ["2012-12-31", "2013-01-07", "2013-03-04"]
    assert parts["2012-12-31"]["row"].tolist() == [0, 1]


def test_period_labels_are_zero_padded_so_names_sort_in_time_order():
    labels = period_label(
        pd.Series(pd.to_datetime(["2013-01-07", "2013-03-04", "2013-11-30"], utc=True)), "week"
    )
    assert labels.tolist() == ["2013-01-07", "2013-03-04", "2013-11-25"]
    assert labels.tolist() == sorted(labels.tolist())


@pytest.mark.parametrize("freq", ["month", "week"])
def test_rows_without_a_time_are_refused_not_lost_or_filed_under_na(freq):
    # A row with no timestamp belongs to no period: bootstrap must say so, not drop it (month)
    # or write it to a "batch-<NA>-W<NA>" file (week), which validation would never see as wrong.
    df = pd.DataFrame(
        {
            "time_hour": pd.to_datetime(["2013-01-01 10:00", None, "2013-02-01 10:00"], utc=True),
            "row": [0, 1, 2],
        }
    )
    with pytest.raises(ValueError, match="time_hour"):
        partition_by_period(df, "time_hour", freq)


def test_empty_frame_has_no_batches():
    assert partition_by_period(_timed([]), "time_hour", "month") == {}


def test_same_frame_written_twice_gives_identical_bytes(tmp_path, make_frame):
    df = make_frame(50)
    write_frame(df, tmp_path / "a" / "batch.parquet")
    write_frame(df.copy(), tmp_path / "b" / "batch.parquet")
    first = (tmp_path / "a" / "batch.parquet").read_bytes()
    assert first == (tmp_path / "b" / "batch.parquet").read_bytes()
    assert first[:4] == b"PAR1"


def test_written_frame_reads_back_equal_with_utc_times_and_no_temp_file(tmp_path, make_frame):
    df = make_frame(20)
    path = tmp_path / "deep" / "dir" / "batch-2013-01.parquet"
    write_frame(df, path)
    back = read_frame(path)
    pd.testing.assert_frame_equal(back, df)
    assert str(back["time_hour"].dt.tz) == "UTC"
    assert [p.name for p in path.parent.iterdir()] == ["batch-2013-01.parquet"]


def test_different_frames_give_different_files(tmp_path, make_frame):
    df = make_frame(20)
    changed = df.copy()
    changed.loc[3, "distance"] += 1
    write_frame(df, tmp_path / "a.parquet")
    write_frame(changed, tmp_path / "b.parquet")
    assert sha256_file(tmp_path / "a.parquet") != sha256_file(tmp_path / "b.parquet")


def test_data_dir_is_read_in_file_name_order(tmp_path):
    write_frame(_timed(["2013-02-01 10:00"]).assign(row=2), tmp_path / "batch-2013-02.parquet")
    write_frame(_timed(["2013-01-01 10:00", "2013-01-02 10:00"]), tmp_path / "batch-2013-01.parquet")
    (tmp_path / "notes.txt").write_text("not data")
    (tmp_path / "sub.parquet").mkdir()  # a directory with the suffix is not a data file
    assert [p.name for p in data_files(tmp_path)] == ["batch-2013-01.parquet", "batch-2013-02.parquet"]
    df = read_data_dir(tmp_path)
    assert df["row"].tolist() == [0, 1, 2]
    assert df.index.tolist() == [0, 1, 2]
    assert df["time_hour"].is_monotonic_increasing


def test_empty_data_dir_fails_telling_to_bootstrap(tmp_path):
    (tmp_path / "readme.md").write_text("nothing here")
    with pytest.raises(FileNotFoundError) as info:
        read_data_dir(tmp_path)
    assert str(tmp_path) in str(info.value)
    assert "no *.parquet files" in str(info.value)
    assert "mlpipe bootstrap" in str(info.value)


def test_materialised_period_is_one_file_per_month(tmp_path, make_frame):
    source = make_frame(6, start="2013-01-31 21:00")  # crosses into February (UTC)
    asked = []

    def load_period(start, end):
        asked.append((start, end))
        return source

    written = materialise_period(
        load_period, date(2013, 1, 1), date(2013, 3, 1), tmp_path, "time_hour", "month"
    )
    assert asked == [(date(2013, 1, 1), date(2013, 3, 1))]
    assert [p.name for p in written] == ["batch-2013-01-01.parquet", "batch-2013-02-01.parquet"]
    pd.testing.assert_frame_equal(read_data_dir(tmp_path), source)


def _hourly(n_hours: int, per_hour: int, seed: int = 0) -> pd.DataFrame:
    """`per_hour` rows for each of `n_hours` hours, shuffled, so the cut must handle ties and disorder."""
    stamps = pd.date_range("2013-01-01", periods=n_hours, freq="h", tz="UTC").repeat(per_hour)
    df = pd.DataFrame({"time_hour": stamps, "row": range(len(stamps))})
    return df.sample(frac=1, random_state=seed).reset_index(drop=True)


def test_time_split_tests_on_the_latest_rows_and_no_timestamp_is_on_both_sides():
    df = _hourly(50, 4)
    train, test, cutoff = split_by_time(df, "time_hour", 0.2)
    assert len(train) + len(test) == len(df)
    assert sorted([*train["row"], *test["row"]]) == list(range(len(df)))
    assert train["time_hour"].max() < cutoff
    assert test["time_hour"].min() == cutoff
    assert not set(train["time_hour"]) & set(test["time_hour"])
    assert len(test) == 40  # 10 whole hours of 4 rows: exactly 20%


def test_time_split_keeps_ties_together_so_the_fraction_is_only_approximate():
    df = _hourly(7, 3)  # 21 rows: 20% would cut inside an hour
    train, test, cutoff = split_by_time(df, "time_hour", 0.2)
    assert len(test) % 3 == 0
    assert abs(len(test) / len(df) - 0.2) < 3 / len(df)
    assert cutoff == pd.Timestamp("2013-01-01 05:00", tz="UTC")


def test_time_split_returns_both_sides_sorted_in_time():
    train, test, _ = split_by_time(_hourly(30, 2, seed=3), "time_hour", 0.3)
    assert train["time_hour"].is_monotonic_increasing
    assert test["time_hour"].is_monotonic_increasing
    assert train.index.tolist() == list(range(len(train)))


def test_random_split_with_the_same_seed_is_the_same_split():
    df = pd.DataFrame({"row": range(100)})
    train_a, test_a = split_random(df, 0.2, seed=42)
    train_b, test_b = split_random(df, 0.2, seed=42)
    pd.testing.assert_frame_equal(train_a, train_b)
    pd.testing.assert_frame_equal(test_a, test_b)
    assert 10 <= len(test_a) <= 30 and len(train_a) + len(test_a) == 100
    assert sorted([*train_a["row"], *test_a["row"]]) == list(range(100))


def test_random_split_keeps_every_row_on_its_side_as_rows_are_added():
    first = pd.DataFrame({"row": range(1000), "x": np.arange(1000) * 0.5})
    grown = pd.concat([first, pd.DataFrame({"row": range(1000, 1500), "x": np.arange(500) * 0.25})])
    _, test_first = split_random(first, 0.2, seed=43)
    train_grown, test_grown = split_random(grown.reset_index(drop=True), 0.2, seed=43)
    assert set(test_first["row"]) == set(test_grown["row"]) & set(first["row"])
    assert not set(train_grown["row"]) & set(test_first["row"])
    assert 0.15 < len(test_grown) / len(grown) < 0.25


def test_random_split_with_another_seed_is_another_split():
    df = pd.DataFrame({"row": range(100)})
    _, test_a = split_random(df, 0.2, seed=42)
    _, test_b = split_random(df, 0.2, seed=43)
    assert len(test_a) and len(test_b)
    assert set(test_a["row"]) != set(test_b["row"])


def test_random_split_keeps_each_side_in_original_order():
    df = pd.DataFrame({"row": range(50)})
    train, test = split_random(df, 0.3, seed=1)
    assert np.all(np.diff(train["row"]) > 0)
    assert np.all(np.diff(test["row"]) > 0)
    assert 5 <= len(test) <= 25


def test_sha256_file_is_the_hash_of_the_bytes(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(b"abc")
    assert sha256_file(path) == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    big = bytes(range(256)) * 10_000  # larger than one read chunk
    path.write_bytes(big)
    assert sha256_file(path) == hashlib.sha256(big).hexdigest()


def test_an_arrow_table_is_written_with_the_bytes_of_its_frame(tmp_path, make_frame):
    df = make_frame(30)
    write_frame(df, tmp_path / "frame.parquet")
    write_table(pa.Table.from_pandas(df, preserve_index=False), tmp_path / "table.parquet")
    assert sha256_file(tmp_path / "frame.parquet") == sha256_file(tmp_path / "table.parquet")


def test_data_dir_as_one_frame_equals_the_concatenated_files_and_widens_types(tmp_path, make_frame):
    a, b = make_frame(5, seed=1), make_frame(4, seed=2, start="2013-02-01 05:00")
    a["distance"] = a["distance"].astype("int64")  # int64 in one file, float64 in the other
    write_frame(a, tmp_path / "batch-2013-01-01.parquet")
    write_frame(b, tmp_path / "batch-2013-02-01.parquet")
    expected = pd.concat([read_frame(p) for p in data_files(tmp_path)], ignore_index=True)
    got = read_data_dir(tmp_path)
    pd.testing.assert_frame_equal(got, expected)
    assert got["distance"].dtype == "float64"
    assert list(read_data_dir(tmp_path, columns=["late", "dest"]).columns) == ["late", "dest"]


def test_split_positions_gather_the_rows_the_frame_split_gives():
    df = _hourly(40, 3, seed=5)
    train, test, cutoff = split_by_time(df, "time_hour", 0.25)
    train_pos, test_pos = time_split_positions(df["time_hour"].dt.tz_localize(None).to_numpy(), 0.25)
    assert df["row"].to_numpy()[train_pos].tolist() == train["row"].tolist()
    assert df["row"].to_numpy()[test_pos].tolist() == test["row"].tolist()
    assert df["time_hour"].iloc[test_pos[0]] == cutoff
    r_train, r_test = random_split_positions(df, 0.25, seed=3)
    assert df["row"].to_numpy()[r_test].tolist() == split_random(df, 0.25, 3)[1]["row"].tolist()
    assert sorted([*r_train, *r_test]) == list(range(len(df)))


def test_a_split_refuses_rows_without_a_time_and_empty_data_with_the_rule(params):
    from mlpipe.pipeline.stages.split import split_positions

    assert params.split.method == "time"
    df = _hourly(10, 2).rename(columns={"time_hour": params.dataset.time_column})
    df.loc[3, params.dataset.time_column] = pd.NaT
    message = f"{params.dataset.time_column}: 1 rows without a time"
    with pytest.raises(ValueError, match=message):
        split_by_time(df, params.dataset.time_column, 0.2)
    with pytest.raises(ValueError, match=message):  # the stage's Arrow path names the same rule
        split_positions(pa.Table.from_pandas(df, preserve_index=False), params)
    with pytest.raises(ValueError, match="no rows to split"):
        split_by_time(df.iloc[:0], params.dataset.time_column, 0.2)
