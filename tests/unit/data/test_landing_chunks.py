"""Landed files in bounded memory: read a chunk at a time with data/'s types, limits on size and rows,
junk refused per column (never a failure case per cell), and the same verdict whatever the chunk size."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pandas as pd
import pyarrow.parquet as pq
import pytest

from mlpipe.data.frames import write_frame
from mlpipe.data.landing import (
    check_landed,
    conformed_tables,
    landed_tables,
    landed_time_max,
    take_into_data,
)
from mlpipe.errors import DataError


def _limits(params, **retrain):
    return params.model_copy(update={"retrain": params.retrain.model_copy(update=retrain)})


@pytest.fixture
def data_dir(make_frame, tmp_path):
    """data/ holding one earlier batch (its types are the ones batches must have)."""
    data = tmp_path / "data"
    write_frame(make_frame(30, seed=1), data / "batch-2013-01-01.parquet")
    return data


def _junk_csv(path, columns, rows):
    path.write_text(",".join(columns) + "\n" + (",".join(["zz"] * len(columns)) + "\n") * rows)
    return path


def test_a_csv_is_read_in_chunks_of_the_declared_size_with_text_kept_as_text(make_frame, tmp_path):
    import pyarrow as pa

    src = tmp_path / "b.csv"
    frame = make_frame(25).assign(tailnum=[f"00{i:03d}" for i in range(25)])
    frame.to_csv(src, index=False)
    schema = pa.schema([("tailnum", pa.string()), ("distance", pa.float64())])
    tables = list(landed_tables(src, schema, chunk_rows=10))
    assert [t.num_rows for t in tables] == [10, 10, 5]
    assert tables[0].schema.field("tailnum").type == "string"
    assert tables[0].schema.field("distance").type == "string", "data/'s columns are converted later"
    assert pa.concat_tables(tables).column("tailnum").to_pylist() == frame["tailnum"].tolist()
    header_only = tmp_path / "empty.csv"
    header_only.write_text("tailnum,distance\n")
    assert [t.num_rows for t in landed_tables(header_only, schema, 10)] == [0]


@pytest.mark.parametrize(
    ("name", "payload", "why"),
    [
        ("ragged.csv", b"a,b\n1,2\n3,4,5\n", "Expected 2 columns, got 3"),
        ("binary.parquet", b"not a parquet file", "Parquet"),
        ("nothing.csv", b"", "Empty CSV file"),
    ],
)
def test_an_unreadable_file_is_a_data_error_naming_it(tmp_path, name, payload, why):
    path = tmp_path / name
    path.write_bytes(payload)
    with pytest.raises(DataError, match=why) as caught:
        list(landed_tables(path, None, 10))
    assert str(caught.value).startswith(f"{name}: ")


def test_junk_is_refused_column_by_column_naming_both_types(data_dir, params, tmp_path):
    columns = pq.read_schema(next(data_dir.iterdir())).names
    junk = _junk_csv(tmp_path / "junk.csv", columns, 250)
    verdict = check_landed(junk, _limits(params, chunk_rows=100), {}, data_dir)
    by_column = {v.column: v for v in verdict.violations}
    assert not verdict.accepted and verdict.rows == 250
    assert by_column["distance"].rule.startswith("type string cannot be read as double, the type data/")
    assert by_column["distance"].count == 250 and by_column["distance"].examples == ("zz",)
    assert "(time_format datetime)" in by_column["time_hour"].rule
    # One violation per refused column: its values are not checked again (no failure case per cell).
    assert len(by_column) == len(verdict.violations)
    assert "carrier" not in by_column, "text columns take any text"


def test_the_verdict_is_the_same_whatever_the_chunk_size(make_frame, data_dir, params, tmp_path):
    batch = make_frame(60, seed=7, start="2013-01-03 05:00")
    batch.loc[[3, 45], "hour"] = 99  # one bad value in the first chunk, one in the last
    batch["minute"] = batch["minute"].astype(object)
    batch.loc[[10, 50], "minute"] = "half past"
    src = tmp_path / "b.csv"
    batch.to_csv(src, index=False)
    whole = check_landed(src, params, {}, data_dir)
    chunked = check_landed(src, _limits(params, chunk_rows=100), {}, data_dir)
    assert [v.message() for v in whole.violations] == [v.message() for v in chunked.violations]
    assert {v.column: v.count for v in chunked.violations} == {"minute": 2, "hour": 2}


def test_duplicates_in_any_chunk_are_found(make_frame, data_dir, params, tmp_path):
    earlier = pd.read_parquet(next(data_dir.iterdir()))
    batch = pd.concat([make_frame(250, seed=8, start="2013-02-01 05:00"), earlier.tail(3)])
    src = tmp_path / "dup.csv"
    batch.to_csv(src, index=False)
    verdict = check_landed(src, _limits(params, chunk_rows=100), {}, data_dir)
    assert [(v.column, v.count) for v in verdict.violations] == [("<rows>", 3)]


def test_a_file_over_the_size_limit_is_refused_from_its_size_alone(data_dir, params, tmp_path):
    big = tmp_path / "big.csv"
    big.write_bytes(b"\x00" * 1_500_000)  # not even a CSV: never read
    (v,) = check_landed(big, _limits(params, max_batch_mb=1), {}, data_dir).violations
    assert v.message() == (
        "big.csv: <file>: 1.5 MB, above max_batch_mb 1 "
        "(rule: retrain limits on a landed file; split it into smaller batches): 0 offending"
    )


def test_a_file_over_the_row_limit_is_refused_when_the_count_passes_it(
    make_frame, data_dir, params, tmp_path
):
    batch = make_frame(250, seed=9, start="2013-02-01 05:00")
    batch.to_csv(tmp_path / "long.csv", index=False)
    write_frame(batch, tmp_path / "long.parquet")
    limited = _limits(params, max_batch_rows=120, chunk_rows=100)
    csv = check_landed(tmp_path / "long.csv", limited, {}, data_dir)
    parquet = check_landed(tmp_path / "long.parquet", limited, {}, data_dir)
    rule = "more rows than max_batch_rows 120"
    assert [(v.rule.split(" (")[0], v.count) for v in csv.violations] == [(rule, 200)]
    assert [(v.rule.split(" (")[0], v.count) for v in parquet.violations] == [(rule, 250)], (
        "a Parquet footer states its rows: refused before reading"
    )


def test_an_accepted_batch_is_written_one_row_group_per_chunk_with_the_same_bytes_each_time(
    make_frame, data_dir, params, tmp_path
):
    batch = make_frame(250, seed=10, start="2013-02-01 05:00")
    src = tmp_path / "landing" / "b.csv"
    src.parent.mkdir()
    batch.to_csv(src, index=False)
    small = _limits(params, chunk_rows=100)
    assert check_landed(src, small, {}, data_dir).accepted
    dest = take_into_data(conformed_tables(src, small, data_dir), src, data_dir)
    first = dest.read_bytes()
    assert pq.ParquetFile(dest).metadata.num_row_groups == 3
    take_into_data(conformed_tables(src, small, data_dir), src, data_dir)
    assert dest.read_bytes() == first
    pd.testing.assert_frame_equal(pd.read_parquet(dest), batch)


def test_the_newest_time_of_a_landed_file_skips_junk(make_frame, params, tmp_path):
    batch = make_frame(30, seed=11)
    batch.to_csv(tmp_path / "b.csv", index=False)
    assert landed_time_max(tmp_path / "b.csv", "time_hour", "datetime", 100) == batch["time_hour"].max()
    _junk_csv(tmp_path / "junk.csv", ["time_hour", "hour"], 30)
    assert landed_time_max(tmp_path / "junk.csv", "time_hour", "datetime", 100) is None


PEAK = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path
    from mlpipe.config import load_params
    from mlpipe.data.landing import check_landed
    from mlpipe.release.probe import peak_rss_mb  # VmHWM: ru_maxrss would carry pytest's own peak
    params_path, junk, data = sys.argv[1:]
    params = load_params(params_path)
    params = params.model_copy(update={"retrain": params.retrain.model_copy(update={"chunk_rows": 10000})})
    verdict = check_landed(Path(junk), params, {}, Path(data))
    print(json.dumps({"peak_mb": peak_rss_mb(),
                      "rows": verdict.rows, "refused": len(verdict.violations)}))
    """
)


def test_checking_junk_takes_memory_of_the_chunk_not_of_the_file(data_dir, params_path, tmp_path):
    """Before: validation held the whole file as objects plus a pandera failure case per cell, ~170x
    the CSV (2 MB of junk peaked at 385 MB, 8 MB at 1,024 MB, the old code measured). Now 4x the file costs
    next to nothing more."""
    columns = pq.read_schema(next(data_dir.iterdir())).names
    peaks = {}
    for mb in (2, 8):
        junk = _junk_csv(tmp_path / f"junk{mb}.csv", columns, mb * 1_000_000 // (3 * len(columns)))
        proc = subprocess.run(
            [sys.executable, "-c", PEAK, str(params_path), str(junk), str(data_dir)],
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert proc.returncode == 0, proc.stderr[-2000:]
        peaks[mb] = json.loads(proc.stdout.splitlines()[-1])
        assert peaks[mb]["refused"] > 0
    assert peaks[8]["rows"] == 4 * peaks[2]["rows"]
    assert peaks[8]["peak_mb"] - peaks[2]["peak_mb"] < 60, peaks  # before: +640 MB


def test_rows_breaking_row_rules_in_several_chunks_are_set_aside_chunk_by_chunk(
    make_frame, data_dir, params, tmp_path
):
    from mlpipe.data.landing import describe_taken, take_batch

    batch = make_frame(250, seed=11, start="2013-02-01 05:00")
    batch.loc[3, ["hour", "minute"]] = [99, 70]  # two rules, one row: in the first chunk
    batch["carrier"] = batch["carrier"].astype(object)
    batch.loc[120, "carrier"] = None  # a required value missing: in the third chunk
    batch.loc[249, "distance"] = -1.0  # in the last chunk
    src = tmp_path / "landing" / "b.csv"
    src.parent.mkdir()
    batch.to_csv(src, index=False)
    small, qdir = _limits(params, chunk_rows=50), tmp_path / "quarantine"

    verdict = check_landed(src, small, {}, data_dir)
    whole = check_landed(src, params, {}, data_dir)
    assert verdict.accepted and verdict.set_aside_rows == whole.set_aside_rows == 3
    rules = {(v.column, v.rule, v.count) for v in verdict.set_aside}
    assert rules == {(v.column, v.rule, v.count) for v in whole.set_aside}, "whatever the chunk size"
    assert {(v.column, v.count) for v in verdict.set_aside} == {
        ("hour", 1),
        ("minute", 1),
        ("carrier", 1),
        ("distance", 1),
    }
    taken = take_batch(verdict, small, data_dir, qdir)
    assert (taken.rows, taken.set_aside) == (247, 3)
    dest, first = data_dir / "b.parquet", (data_dir / "b.parquet").read_bytes()
    assert pq.ParquetFile(dest).metadata.num_row_groups == 5, "one row group per chunk, bad rows left out"
    pd.testing.assert_frame_equal(
        pd.read_parquet(dest), batch.drop(index=[3, 120, 249]).reset_index(drop=True)
    )
    aside = pd.read_parquet(qdir / "b.rows.parquet")
    assert aside["flight"].tolist() == batch.loc[[3, 120, 249], "flight"].tolist()
    assert len(pd.read_parquet(dest)) + len(aside) == len(batch), (
        "every landed row is in data/ or quarantine/"
    )
    take_batch(verdict, small, data_dir, qdir)
    assert dest.read_bytes() == first, "the same chunks give the same bytes"
    assert describe_taken(verdict, taken, "quarantine").startswith(
        "b.csv: 247 rows taken into data/b.parquet, 3 set aside ("
    )
    assert describe_taken(verdict, taken, "quarantine").endswith(
        " and 1 more rules) -> quarantine/b.rows.parquet"
    )
