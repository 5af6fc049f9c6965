"""Landing zone: batches found, checked against schema/profile/known rows, quarantined or taken in."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pytest

from mlpipe.data.frames import write_frame
from mlpipe.data.landing import (
    BatchVerdict,
    check_batch,
    conformed_tables,
    data_name,
    ingest_file,
    landed_batches,
    quarantine,
    release_next_period,
    row_hashes,
    take_into_data,
)
from mlpipe.data.validation import Violation, profile_frame

NO_ROWS = np.empty(0, dtype=np.uint64)  # data/ holds no rows yet


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
    violations, warnings = check_batch(batch, params, profile, NO_ROWS, "b.parquet")
    assert violations == []
    assert warnings == ["dest: 1 categories not in the training profile (e.g. SFO)"]


def test_rows_already_in_data_are_refused_as_duplicates(make_frame, params):
    earlier = make_frame(20)
    known = np.unique(row_hashes(earlier, _key(params)).to_numpy())
    batch = pd.concat([earlier.head(4), make_frame(6, seed=9, start="2013-02-01 05:00")], ignore_index=True)
    violations, _ = check_batch(batch, params, {}, known, "dup.parquet")
    assert violations == [Violation("<rows>", "duplicates rows already in data/", 4, (), "dup.parquet")]


def test_schema_violations_name_the_batch(flights, params):
    violations, _ = check_batch(flights.assign(hour=99), params, {}, NO_ROWS, "bad.parquet")
    assert [v.message() for v in violations][
        0
    ] == "bad.parquet: hour: above max 23.0: 12 offending (e.g. 99.0)"
    assert violations[1].rule.startswith(
        "12 of 12 rows break a row rule, share 1.0000 above max_bad_row_share"
    )


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


def test_csv_batch_is_read_with_utc_times_and_taken_into_data_as_parquet(flights, params, tmp_path):
    data = tmp_path / "data"
    write_frame(flights, data / "batch-a.parquet")
    src = tmp_path / "landing" / "batch-x.csv"
    src.parent.mkdir()
    flights.to_csv(src, index=False)
    dest = take_into_data(conformed_tables(src, params, data), src, data)
    assert dest.name == data_name(src) == "batch-x.parquet"
    assert src.exists(), "the landing file stays until the snapshot is committed"
    taken = pd.read_parquet(dest)
    assert str(taken["time_hour"].dt.tz) == "UTC"
    pd.testing.assert_frame_equal(taken, flights)


def test_ingest_copies_into_landing_and_refuses_a_waiting_name_and_unknown_types(flights, tmp_path):
    src = tmp_path / "mine.parquet"
    write_frame(flights, src)
    landing = tmp_path / "landing"
    dest = ingest_file(src, landing)
    assert dest.read_bytes() == src.read_bytes() and src.exists()
    with pytest.raises(
        FileExistsError, match="landing/mine.parquet: a batch of that name is waiting already"
    ):
        ingest_file(src, landing)
    # a name data/ holds is no refusal: the run takes the batch in under a free name (naming.data_names)
    other = tmp_path / "other" / "old.parquet"
    other.parent.mkdir()
    write_frame(flights, other)
    assert ingest_file(other, landing) == landing / "old.parquet"
    (tmp_path / "x.json").write_text("{}")
    with pytest.raises(ValueError, match="unsupported file type '.json'"):
        ingest_file(tmp_path / "x.json", landing)


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


# ---- one schema for batches and stages -------------------------------------------------------------


def _land(path, data, params, profile):
    """What the retrain flow does with a landed file: check it a chunk at a time, take it in if it passes."""
    from mlpipe.data.landing import check_landed

    verdict = check_landed(path, params, profile, data)
    if verdict.accepted:
        take_into_data(conformed_tables(path, params, data), path, data)
    return verdict.violations


def test_batches_with_mismatched_types_never_break_the_stages_after_them(make_frame, params, tmp_path):
    from mlpipe.data.frames import data_files, read_data_table, read_frame
    from mlpipe.data.validation import validate_frame
    from mlpipe.pipeline.split import time_split_positions

    data, landing = tmp_path / "data", tmp_path / "landing"
    landing.mkdir()
    first = make_frame(48, seed=1)
    write_frame(first, data / "batch-2013-01-01.parquet")
    profile = profile_frame(first, params)

    digits = make_frame(48, seed=2, start="2013-01-03 05:00")
    digits["tailnum"] = [f"00{i:03d}" for i in range(48)]  # looks like numbers; data/ holds text
    digits["dep_time"] = digits["dep_time"].astype("int64")  # integers where data/ holds floats
    digits.to_csv(landing / "digits.csv", index=False)
    assert _land(landing / "digits.csv", data, params, profile) == []

    dated = make_frame(48, seed=3, start="2013-01-05 05:00")
    dated["flight"] = "2013-03-01"  # a date-like text in an integer column
    dated.to_csv(landing / "dated.csv", index=False)
    refused = _land(landing / "dated.csv", data, params, profile)
    assert [v.column for v in refused] == ["flight"] and "cannot be read as int64" in refused[0].rule
    assert "2013-03-01" in refused[0].examples

    labels = make_frame(48, seed=4, start="2013-01-07 05:00")
    labels["late"] = labels["late"].map({0: "no", 1: "yes"})  # a string label for a 0/1 target
    labels.to_csv(landing / "labels.csv", index=False)
    assert "late" in [v.column for v in _land(landing / "labels.csv", data, params, profile)]

    epoch = make_frame(48, seed=5, start="2013-01-09 05:00")
    epoch["time_hour"] = epoch["time_hour"].astype("int64") // 10**9  # epoch seconds, not a time
    epoch.to_csv(landing / "epoch.csv", index=False)
    refused = _land(landing / "epoch.csv", data, params, profile)
    assert "time_hour" in [v.column for v in refused]

    # What was taken in reads as one table with one type per column, and passes the validate stage.
    assert [f.name for f in data_files(data)] == ["batch-2013-01-01.parquet", "digits.parquet"]
    table = read_data_table(data)
    assert table.schema.field("tailnum").type == "string" and table.schema.field("dep_time").type == "double"
    assert read_frame(data / "digits.parquet")["tailnum"].tolist()[:2] == ["00000", "00001"]
    frame = table.to_pandas()
    assert validate_frame(frame, params) == []
    assert len(time_split_positions(frame["time_hour"].to_numpy(), 0.2)[1]) > 0


def test_a_batch_of_the_same_types_is_taken_in_unchanged(flights, tmp_path):
    import pyarrow as pa

    from mlpipe.data.landing import conform_table, data_schema

    write_frame(flights, tmp_path / "a.parquet")
    table = pa.Table.from_pandas(flights, preserve_index=False)
    same, violations = conform_table(table, data_schema(tmp_path), "datetime", "b.parquet")
    assert violations == [] and same.equals(table)
    assert data_schema(tmp_path / "nothing") is None


# ---- a batch judged as a batch: physical limits per row, the training range an expectation ---------------


@pytest.fixture
def landed(make_frame, tmp_path):
    """data/ with one earlier batch (its profile the training profile) and an empty landing zone."""
    data, landing = tmp_path / "data", tmp_path / "landing"
    landing.mkdir()
    first = make_frame(48, seed=1)
    write_frame(first, data / "batch-2013-01-01.parquet")
    return data, landing, tmp_path / "quarantine"


def _share(params, share):
    return params.model_copy(
        update={"validate_": params.validate_.model_copy(update={"max_bad_row_share": share})}
    )


def test_three_physically_impossible_rows_are_set_aside_and_the_rest_taken_in(make_frame, params, landed):
    from mlpipe.data.landing import check_landed, describe_taken, take_batch

    data, landing, qdir = landed
    batch = make_frame(200, seed=2, start="2013-01-03 05:00")
    batch.loc[[5, 77, 190], "distance"] = [9000.0, 12000.0, 7500.0]  # above the physical max 6000
    batch.to_csv(landing / "b2.csv", index=False)
    profile = profile_frame(pd.read_parquet(data / "batch-2013-01-01.parquet"), params)

    verdict = check_landed(landing / "b2.csv", params, profile, data)
    assert verdict.accepted and verdict.set_aside_rows == 3
    assert verdict.set_aside == [
        Violation("distance", "above max 6000.0", 3, ("9000.0", "12000.0", "7500.0"), "b2.csv")
    ]
    taken = take_batch(verdict, params, data, qdir)
    assert (taken.rows, taken.set_aside) == (197, 3)
    good = pd.read_parquet(data / "b2.parquet")
    pd.testing.assert_frame_equal(good, batch.drop(index=[5, 77, 190]).reset_index(drop=True))
    aside = pd.read_parquet(qdir / "b2.rows.parquet")
    pd.testing.assert_frame_equal(aside, batch.loc[[5, 77, 190]].reset_index(drop=True))
    report = (qdir / "b2.rows.parquet.report.md").read_text()
    assert "**3 of 200 rows set aside** in `b2.rows.parquet`" in report
    assert "| b2.csv | distance | above max 6000.0 | 3 | 9000.0, 12000.0, 7500.0 |" in report
    assert describe_taken(verdict, taken, "quarantine") == (
        "b2.csv: 197 rows taken into data/b2.parquet, 3 set aside (distance above max 6000.0) "
        "-> quarantine/b2.rows.parquet"
    )


def test_new_extremes_inside_the_physical_limits_are_taken_in_whole_and_flagged(make_frame, params, landed):
    from mlpipe.data.landing import check_landed, take_batch

    data, landing, qdir = landed
    profile = profile_frame(pd.read_parquet(data / "batch-2013-01-01.parquet"), params)
    batch = make_frame(100, seed=3, start="2013-01-03 05:00")
    batch.loc[:9, "temp"] = 95.0  # hotter than any training row, far below the physical max 130
    batch.loc[:3, "wind_speed"] = -0.0  # on the training min: not outside it
    batch.to_parquet(landing / "hot.parquet", index=False)

    verdict = check_landed(landing / "hot.parquet", params, profile, data)
    assert verdict.accepted and verdict.set_aside_rows == 0 and verdict.set_aside == []
    high = profile["columns"]["temp"]["max"]
    assert f"temp: 10 rows above the training max {high} (accepted, flagged)" in verdict.flagged
    taken = take_batch(verdict, params, data, qdir)
    assert taken.rows == 100 and taken.rows_file is None and not qdir.exists()
    assert (pd.read_parquet(data / "hot.parquet")["temp"] == 95.0).sum() == 10


def test_a_batch_whose_share_of_bad_rows_passes_the_bound_is_refused_whole(make_frame, params, landed):
    from mlpipe.data.landing import check_landed

    data, landing, _ = landed
    batch = make_frame(100, seed=4, start="2013-01-03 05:00")
    batch.loc[:5, "hour"] = 30  # 6 of 100 rows: share 0.06 above the default 0.05
    batch.to_csv(landing / "b3.csv", index=False)
    assert params.validate_.max_bad_row_share == 0.05

    verdict = check_landed(landing / "b3.csv", params, {}, data)
    assert not verdict.accepted and verdict.set_aside == []
    assert [(v.column, v.count) for v in verdict.violations] == [("hour", 6), ("<rows>", 6)]
    assert (
        "6 of 100 rows break a row rule, share 0.0600 above max_bad_row_share 0.05"
        in verdict.violations[1].rule
    )
    assert check_landed(landing / "b3.csv", _share(params, 0.1), {}, data).set_aside_rows == 6
    batch.loc[1:5, "hour"] = 3  # one bad row left: all or nothing when the bound is 0
    batch.to_csv(landing / "b3.csv", index=False)
    assert check_landed(landing / "b3.csv", params, {}, data).set_aside_rows == 1
    assert not check_landed(landing / "b3.csv", _share(params, 0), {}, data).accepted


def test_schema_problems_still_refuse_the_whole_batch(make_frame, params, landed):
    from mlpipe.data.landing import check_landed

    data, landing, _ = landed
    batch = make_frame(100, seed=5, start="2013-01-03 05:00")
    batch.loc[[1, 2], "distance"] = -3.0  # row breaks, which alone would be set aside
    batch.drop(columns=["dest"]).to_csv(landing / "nodest.csv", index=False)
    verdict = check_landed(landing / "nodest.csv", params, {}, data)
    assert not verdict.accepted and verdict.set_aside == [] and verdict.set_aside_rows == 0
    assert {(v.column, v.rule) for v in verdict.violations} == {
        ("dest", "required column is missing"),
        ("distance", "below min 1.0"),
    }
    labels = batch.assign(late=batch["late"].map({0: "no", 1: "yes"}))  # a type data/ cannot read
    labels.to_csv(landing / "labels.csv", index=False)
    assert "late" in [v.column for v in check_landed(landing / "labels.csv", params, {}, data).violations]
    earlier = pd.read_parquet(data / "batch-2013-01-01.parquet")
    dup = pd.concat([batch, earlier.head(2)], ignore_index=True)  # rows already in data/, beside 2 bad ones
    dup.to_csv(landing / "dup.csv", index=False)
    refused = check_landed(landing / "dup.csv", params, {}, data)
    assert [(v.column, v.count) for v in refused.violations] == [("distance", 2), ("<rows>", 2)]


def test_a_batch_taken_in_under_a_quarantined_name_moves_its_copies_to_resolved(tmp_path):
    from mlpipe.data.landing import resolve_quarantined

    landing, qdir = tmp_path / "landing", tmp_path / "quarantine"
    landing.mkdir()
    verdict = BatchVerdict(landing / "b2.csv", 3, [Violation("hour", "above max 23.0", 3, ("99",), "b2.csv")])
    for n in range(2):  # quarantined twice: b2.csv and b2.1.csv, each with its report
        (landing / "b2.csv").write_text(f"payload {n}")
        quarantine(landing / "b2.csv", qdir, verdict)
    (qdir / "b22.csv").write_text("another batch")
    (qdir / "b2.rows.parquet").write_text("rows set aside from b2")

    moved = resolve_quarantined("b2.csv", qdir)
    assert sorted(p.name for p in qdir.iterdir()) == ["b2.rows.parquet", "b22.csv", "resolved"]
    assert sorted(p.relative_to(qdir).as_posix() for p in moved) == [
        "resolved/b2.1.csv",
        "resolved/b2.1.csv.report.md",
        "resolved/b2.csv",
        "resolved/b2.csv.report.md",
    ]
    assert (qdir / "resolved" / "b2.csv").read_text() == "payload 0", "nothing is deleted"
    assert resolve_quarantined("b2.csv", qdir) == [] and resolve_quarantined("x.csv", tmp_path / "none") == []


def test_the_initial_data_sets_odd_rows_aside_instead_of_failing_whole(make_frame, params, tmp_path):
    from mlpipe.data.landing import set_aside_initial_rows

    source = make_frame(100, seed=6)
    assert set_aside_initial_rows(source, params, tmp_path / "q") is source, "clean data is left as it came"
    source.loc[[7, 70], "wind_dir"] = 400.0  # beyond the physical 360
    kept = set_aside_initial_rows(source, params.model_copy(), tmp_path / "q")
    pd.testing.assert_frame_equal(kept, source.drop(index=[7, 70]).reset_index(drop=True))
    aside = pd.read_parquet(tmp_path / "q" / "initial.rows.parquet")
    assert aside["wind_dir"].tolist() == [400.0, 400.0]
    assert (
        "| wind_dir | above max 360.0 | 2 |"
        in (tmp_path / "q" / "initial.rows.parquet.report.md").read_text()
    )
    source.loc[:9, "wind_dir"] = 400.0  # 10%: a broken source, left whole for the validate stage to refuse
    assert (
        set_aside_initial_rows(source, params, tmp_path / "q2") is source and not (tmp_path / "q2").exists()
    )
