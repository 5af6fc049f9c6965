"""Landing zone: batches found, checked against schema/profile/known rows, quarantined or taken in."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from mlpipe.data.frames import write_frame
from mlpipe.data.landing import (
    BatchVerdict,
    check_batch,
    data_name,
    ingest_file,
    landed_batches,
    quarantine,
    read_batch,
    release_next_period,
    row_hashes,
    take_into_data,
)
from mlpipe.data.validation import Violation, profile_frame


def _key(params):
    return [*params.features.columns, params.dataset.target, params.dataset.time_column]


def test_only_finished_batch_files_are_collected_in_name_order(tmp_path):
    for name in ("b.parquet", "a.csv", ".c.csv.part", "notes.txt"):
        (tmp_path / name).write_text("x")
    assert [p.name for p in landed_batches(tmp_path)] == ["a.csv", "b.parquet"]
    assert landed_batches(tmp_path / "missing") == []


def test_clean_batch_passes_and_unseen_categories_are_only_warnings(flights, params):
    profile = profile_frame(flights, params)
    batch = flights.copy()
    batch.loc[0, "dest"] = "SFO"
    violations, warnings = check_batch(batch, params, profile, set(), "b.parquet")
    assert violations == []
    assert warnings == ["dest: 1 categories not in the training profile (e.g. SFO)"]


def test_rows_already_in_data_are_refused_as_duplicates(make_frame, params):
    earlier = make_frame(20)
    known = set(row_hashes(earlier, _key(params)).tolist())
    batch = pd.concat([earlier.head(4), make_frame(6, seed=9, start="2013-02-01 05:00")], ignore_index=True)
    violations, _ = check_batch(batch, params, {}, known, "dup.parquet")
    assert violations == [Violation("<rows>", "duplicates rows already in data/", 4, (), "dup.parquet")]


def test_schema_violations_name_the_batch(flights, params):
    violations, _ = check_batch(flights.assign(hour=99), params, {}, set(), "bad.parquet")
    assert [v.message() for v in violations] == [
        "bad.parquet: hour: above max 23.0: 12 offending (e.g. 99.0)"
    ]


def test_quarantine_moves_the_file_beside_a_report_and_never_overwrites(tmp_path):
    landing, qdir = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    verdict = BatchVerdict(
        landing / "b.parquet", 3, [Violation("hour", "above max 23.0", 3, ("99",), "b.parquet")]
    )
    for n in range(2):
        (landing / "b.parquet").write_text(f"payload {n}")
        dest = quarantine(landing / "b.parquet", qdir, verdict)
        assert not (landing / "b.parquet").exists()
        assert dest.read_text() == f"payload {n}"
        report = dest.with_name(dest.name + ".report.md").read_text()
        assert "| b.parquet | hour | above max 23.0 | 3 | 99 |" in report
    assert sorted(p.name for p in qdir.iterdir()) == [
        "b.1.parquet",
        "b.1.parquet.report.md",
        "b.parquet",
        "b.parquet.report.md",
    ]
    assert not verdict.accepted and BatchVerdict(landing / "x", 1).accepted


def test_csv_batch_is_read_with_utc_times_and_taken_into_data_as_parquet(flights, tmp_path):
    src = tmp_path / "landing" / "batch-x.csv"
    src.parent.mkdir()
    flights.to_csv(src, index=False)
    batch = read_batch(src, "time_hour")
    assert str(batch["time_hour"].dt.tz) == "UTC"
    dest = take_into_data(batch, src, tmp_path / "data")
    assert dest.name == data_name(src) == "batch-x.parquet"
    assert src.exists(), "the landing file stays until the snapshot is committed"
    pd.testing.assert_frame_equal(pd.read_parquet(dest), batch)


def test_ingest_copies_into_landing_and_refuses_taken_names_and_unknown_types(flights, tmp_path):
    src = tmp_path / "mine.parquet"
    write_frame(flights, src)
    landing, data = tmp_path / "landing", tmp_path / "data"
    data.mkdir()
    dest = ingest_file(src, landing, data)
    assert dest.read_bytes() == src.read_bytes() and src.exists()
    with pytest.raises(FileExistsError, match="batch names are unique"):
        ingest_file(src, landing, data)
    other = tmp_path / "other" / "old.parquet"
    other.parent.mkdir()
    write_frame(flights, other)
    write_frame(flights, data / "old.parquet")
    with pytest.raises(FileExistsError, match="data/old.parquet"):
        ingest_file(other, landing, data)
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="unsupported file type '.json'"):
        ingest_file(tmp_path / "x.json", landing, data)


def test_release_writes_the_period_after_the_latest_row(flights, tmp_path):
    asked = []

    def load_period(start, end):
        asked.append((start, end))
        return flights.assign(
            time_hour=pd.date_range("2013-04-01 10:00", periods=len(flights), freq="h", tz="UTC")
        )

    dest = release_next_period(
        load_period, pd.Timestamp("2013-03-31 23:00", tz="UTC"), "time_hour", "month", tmp_path
    )
    assert asked == [(date(2013, 4, 1), date(2013, 5, 1))]
    assert dest.name == "batch-2013-04-01.parquet" and len(pd.read_parquet(dest)) == len(flights)
    assert (
        release_next_period(
            lambda s, e: flights.head(0),
            pd.Timestamp("2014-01-01", tz="UTC"),
            "time_hour",
            "month",
            tmp_path / "none",
        )
        is None
    )
