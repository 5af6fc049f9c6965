"""The retrain flow's drift task on a tiny project: the batch against the training rows older than it, a
page that names that window, a cache keyed on the cut, and no report at all when too few rows are older."""

from __future__ import annotations

import shutil
from pathlib import Path

from mlpipe.flows.retrain import drift
from mlpipe.pipeline.split import time_split_positions
from mlpipe.runtime.hashing import sha256_file


def project(tmp_path: Path, params_path: Path, data, batch) -> tuple[Path, Path]:
    """A project holding params.yaml, the time split's train part of `data` and `batch` under data/."""
    root = tmp_path / "project"
    (root / "artifacts/split").mkdir(parents=True)
    (root / "data").mkdir()
    shutil.copy(params_path, root / "params.yaml")
    train_pos, _ = time_split_positions(data["time_hour"].to_numpy(), 0.2)
    data.iloc[train_pos].to_parquet(root / "artifacts/split/train.parquet", index=False)
    path = root / "data" / f"batch-{batch['time_hour'].min():%Y-%m-%d}.parquet"
    batch.to_parquet(path, index=False)
    return root, path


def run_drift(root: Path, batch: Path) -> dict:
    train = root / "artifacts/split/train.parquet"
    return drift.fn(str(root), sha256_file(train), str(batch), sha256_file(batch))


def test_the_report_compares_the_batch_with_older_rows_and_names_their_window(
    make_frame, params_path, tmp_path
):
    data = make_frame(24 * 40, seed=3, start="2013-01-01")  # the split's train part ends on day 32
    root, batch = project(tmp_path, params_path, data, data[data["time_hour"] >= "2013-01-31"])
    out = run_drift(root, batch)
    html = Path(out["files"][0])
    assert html.parent.name.split("-")[2:6] == ["before", "2013", "01", "31T000000+0000"]
    summary = out["summary"]
    assert summary["rows"]["reference"] == 24 * 30 and summary["rows"]["current"] == 24 * 10
    assert summary["note"] == "batch-2013-01-31.parquet vs 720 training rows before 2013-01-31 00:00:00+00:00"
    page = html.read_text()
    assert (
        "<title>Data drift: newest batch batch-2013-01-31.parquet vs the training split before 2013-01-31 "
        in page
    )
    assert "2013-01-01 00:00:00+00:00 .. 2013-01-30 23:00:00+00:00" in page  # the reference's own window
    assert "2013-01-31 00:00:00+00:00 .. 2013-02-09 23:00:00+00:00" in page
    assert run_drift(root, batch) == out  # the same comparison: the report is reused


def test_a_batch_with_too_few_older_training_rows_gets_no_report(make_frame, params_path, tmp_path):
    data = make_frame(24 * 10, seed=5, start="2013-01-01")
    root, batch = project(tmp_path, params_path, data, data)  # the only file: nothing is older
    out = run_drift(root, batch)
    assert out["files"] == [] and out["summary"]["drift_share"] is None
    assert out["summary"]["note"].startswith("no batch drift: 0 training rows before 2013-01-01 00:00:00")
    assert not (root / "artifacts/drift").exists()


def test_a_changed_feature_list_gets_its_own_report(make_frame, params_path, tmp_path):
    # the split and the batch hold the same bytes when only the features change: the report must be new
    import yaml

    data = make_frame(24 * 40, seed=3, start="2013-01-01")
    root, batch = project(tmp_path, params_path, data, data[data["time_hour"] >= "2013-01-31"])
    first = run_drift(root, batch)
    doc = yaml.safe_load((root / "params.yaml").read_text())
    doc["features"]["numerical"].remove("visib")
    del doc["validate"]["ranges"]["visib"]
    (root / "params.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    second = run_drift(root, batch)
    assert Path(second["files"][0]).parent != Path(first["files"][0]).parent
    assert "visib" in first["summary"]["columns"] and "visib" not in second["summary"]["columns"]
