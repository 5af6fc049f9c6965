"""A batch is judged as a batch (issue 26.4): 3 physically impossible rows among thousands are set aside in
quarantine/ and the rest goes into the data snapshot and the model; a batch with too many bad rows is
refused whole, and once fixed and ingested again under its name it leaves quarantine."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import dvc, git, mlpipe, run_id_of, tracking_client

from mlpipe.data.frames import read_data_dir, write_frame

pytestmark = pytest.mark.integration


def test_three_impossible_rows_are_set_aside_the_rest_trains_and_a_fixed_batch_leaves_quarantine(
    project_copy, tmp_path
):
    root = project_copy
    mlpipe(root, "simulate", "--next")
    mlpipe(root, "simulate", "--next")
    lz, qdir = root / "landing", root / "quarantine"
    few, many = lz / "batch-2013-01-15.parquet", lz / "batch-2013-01-21.parquet"
    batch = pd.read_parquet(few)
    bad = batch.index[[10, 500, len(batch) - 1]]
    batch.loc[bad, "distance"] = 9999.0  # above the physical max 6000 of validate.ranges
    write_frame(batch, few)
    broken = pd.read_parquet(many)
    fixed = broken.copy()
    broken.loc[broken.index[: len(broken) // 10], "hour"] = 30  # 10% of rows: above max_bad_row_share 0.05
    write_frame(broken, many)

    proc = mlpipe(root, "run", check=False)
    assert proc.returncode == 3, proc.stderr[-2000:]
    taken = len(batch) - 3
    assert (
        f"taken:         batch-2013-01-15.parquet: {taken:,} rows taken into data/batch-2013-01-15.parquet, "
        "3 set aside "
        "(distance above max 6000.0) -> quarantine/batch-2013-01-15.rows.parquet"
    ) in proc.stdout
    assert "accepted batch-2013-01-15.parquet; quarantined batch-2013-01-21.parquet" in proc.stdout
    assert "3 row(s) set aside in quarantine/" in proc.stdout
    assert "event=batch_taken" in proc.stderr and "3 set aside (distance above max 6000.0)" in proc.stderr

    aside = pd.read_parquet(qdir / "batch-2013-01-15.rows.parquet")
    assert aside["distance"].tolist() == [9999.0] * 3
    pd.testing.assert_frame_equal(aside, batch.loc[bad].reset_index(drop=True))
    report = (qdir / "batch-2013-01-15.rows.parquet.report.md").read_text()
    assert "**3 of" in report and "| distance | above max 6000.0 | 3 | 9999.0 |" in report
    refused = (qdir / "batch-2013-01-21.parquet.report.md").read_text()
    assert "| hour | above max 23.0 |" in refused and "above max_bad_row_share 0.05" in refused

    # The rest is in the committed DVC snapshot and in what the model was trained and tested on.
    md5 = yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]
    assert git(root, "status", "--porcelain") == "" and "data.dvc" not in dvc(root, "status").stdout
    taken_in = pd.read_parquet(root / "data" / "batch-2013-01-15.parquet")
    assert len(taken_in) == taken and taken_in["distance"].max() <= 6000
    data = read_data_dir(root / "data")
    split = [pd.read_parquet(root / "artifacts" / "split" / f"{p}.parquet") for p in ("train", "test")]
    assert sum(len(s) for s in split) == len(data) and all(s["distance"].max() <= 6000 for s in split)
    run = tracking_client(root).get_run(run_id_of(proc))
    assert run.data.tags["mlpipe.data_md5"] == md5

    # Fixed and ingested again under its name: taken in whole, its quarantined copy moved to resolved/.
    (tmp_path / "fixed").mkdir()
    write_frame(fixed, tmp_path / "fixed" / many.name)
    mlpipe(root, "ingest", str(tmp_path / "fixed" / many.name))
    again = mlpipe(root, "run")
    assert f"taken:         {many.name}: {len(fixed):,} rows taken" in again.stdout
    assert sorted(p.name for p in qdir.iterdir()) == [
        "batch-2013-01-15.rows.parquet",
        "batch-2013-01-15.rows.parquet.report.md",
        "resolved",
    ]
    assert sorted(p.name for p in (qdir / "resolved").iterdir()) == [many.name, f"{many.name}.report.md"]
    assert Path(qdir / "resolved" / many.name).stat().st_size > 0, "moved, never deleted"
