"""The retraining flow end to end: batches land, are validated, snapshotted and committed, the model
retrains and is registered; bad batches are quarantined; crashes and concurrent runs are safe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import dvc, git, mlpipe, run_id_of, tracking_client

from mlpipe.data.frames import read_data_dir
from mlpipe.runtime.shell import tool_env

pytestmark = pytest.mark.integration
MODEL = "flights-late"


def data_md5(root: Path) -> str:
    return yaml.safe_load((root / "data.dvc").read_text())["outs"][0]["md5"]


def versions(root: Path) -> list[str]:
    return sorted(str(v.version) for v in tracking_client(root).search_model_versions(f"name = '{MODEL}'"))


def alias(root: Path, name: str) -> str:
    return str(tracking_client(root).get_model_version_by_alias(MODEL, name).version)


def champion_after_gate(root: Path, before: str, new_version: str) -> str:
    """What the gate's recorded decision for `new_version` says the champion must now be."""
    decision = tracking_client(root).get_model_version(MODEL, new_version).tags["mlpipe.gate.decision"]
    assert decision in ("promoted", "kept champion")
    return new_version if decision == "promoted" else before


def landing(root: Path) -> list[str]:
    d = root / "landing"
    return sorted(p.name for p in d.iterdir()) if d.exists() else []


def test_two_released_batches_are_taken_in_and_the_model_retrains_then_a_rerun_trains_nothing(project_copy):
    root = project_copy
    before_md5, before_rows = data_md5(root), len(read_data_dir(root / "data"))
    first = mlpipe(root, "simulate", "--next").stdout
    second = mlpipe(root, "simulate", "--next").stdout
    assert "landing/batch-2013-01-15.parquet" in first and "landing/batch-2013-01-21.parquet" in second
    assert landing(root) == ["batch-2013-01-15.parquet", "batch-2013-01-21.parquet"]

    proc = mlpipe(root, "run")
    assert "mlpipe run: trained a new model" in proc.stdout
    assert "accepted batch-2013-01-15.parquet, batch-2013-01-21.parquet; quarantined none" in proc.stdout
    after_md5 = data_md5(root)
    assert after_md5 != before_md5 and f"{before_md5} -> {after_md5}" in proc.stdout
    assert landing(root) == [], "landing files are consumed once their snapshot is committed"
    assert len(read_data_dir(root / "data")) > before_rows
    subjects = git(root, "log", "--format=%s", "-3").splitlines()
    assert subjects[0] == f"pipeline: outputs for data md5 {after_md5}"
    rows = [
        f"{len(pd.read_parquet(root / 'data' / n)):,}"
        for n in ("batch-2013-01-15.parquet", "batch-2013-01-21.parquet")
    ]
    assert subjects[1] == (
        f"data: add batch-2013-01-15.parquet ({rows[0]} rows), batch-2013-01-21.parquet ({rows[1]} rows) "
        f"(md5 {after_md5})"
    )
    assert git(root, "status", "--porcelain") == ""
    assert versions(root) == ["1", "2"] and alias(root, "challenger") == "2"
    assert alias(root, "champion") == champion_after_gate(root, "1", "2")
    run = tracking_client(root).get_run(run_id_of(proc))
    assert run.data.tags["mlpipe.data_md5"] == after_md5 and run.data.tags["mlpipe.git_dirty"] == "false"
    assert 0 <= run.data.metrics["drift_share"] <= 1
    drift_files = {a.path for a in tracking_client(root).list_artifacts(run.info.run_id, "drift")}
    assert drift_files == {"drift/drift.html", "drift/drift.json"}
    page = Path(tracking_client(root).download_artifacts(run.info.run_id, "drift/drift.html")).read_text()
    title = "<title>Data drift: newest batch batch-2013-01-21.parquet vs the training split before 2013-01-21"
    assert title in page
    assert "batch data/batch-2013-01-21.parquet" in page and "2013-01-21" in page and "sha256 " in page
    # the time split trains on the batch's first days; the reference is only the training rows older than it
    context = json.loads(
        Path(tracking_client(root).download_artifacts(run.info.run_id, "drift/drift.json")).read_text()
    )["summary"]["context"]
    del context["title"]
    ends = {side: [pd.Timestamp(t) for t in context[side]["period"].split(" .. ")] for side in context}
    train = json.loads((root / "artifacts/split/split.json").read_text())["parts"]["train"]
    assert pd.Timestamp(train["time_max"]) >= ends["current"][0] > ends["reference"][1]
    assert context["reference"]["rows"] < train["rows"]
    assert "drift share:   " in proc.stdout and "(batch-2013-01-21.parquet vs " in proc.stdout
    assert "Running stage" not in dvc(root, "repro").stdout, (
        "the flow left dvc.lock true: dvc repro is a no-op"
    )

    again = mlpipe(root, "run", "--flow")  # the flow itself: DVC skips every stage
    assert "nothing to train" in again.stdout and "stages run:    none" in again.stdout
    assert "answered before starting the flow" not in again.stdout
    # a run that takes in no batch has no batch drift: the last batch's is not reported (or logged) again
    assert "drift share:   None (no new batch: no batch drift)" in again.stdout
    assert "event=drift " not in again.stdout + again.stderr and "Task run 'log_drift" not in again.stderr
    assert run_id_of(again) == run.info.run_id and versions(root) == ["1", "2"]
    assert git(root, "log", "--format=%s", "-1") == subjects[0], "no new commit"
    quick = mlpipe(root, "run")  # answered from the record of that run, without a flow
    assert "answered before starting the flow" in quick.stdout
    assert "drift share:   None (no new batch: no batch drift)" in quick.stdout


def _good_batch(root: Path) -> Path:
    mlpipe(root, "simulate", "--next")
    (path,) = (root / "landing").iterdir()
    return path


def test_corrupted_batches_are_quarantined_with_reports_and_good_batch_goes_in(project_copy):
    root = project_copy
    good_path = _good_batch(root)
    good = pd.read_parquet(good_path)
    earlier = read_data_dir(root / "data")
    lz = root / "landing"
    good.drop(columns=["carrier"]).to_parquet(lz / "bad-missing-column.parquet", index=False)
    good.assign(distance="far").to_parquet(lz / "bad-wrong-type.parquet", index=False)
    good.assign(origin=None).to_parquet(lz / "bad-nulls.parquet", index=False)
    good.assign(hour=good["hour"] + 30).to_parquet(lz / "bad-out-of-range.parquet", index=False)
    earlier.head(200).to_parquet(lz / "bad-duplicates.parquet", index=False)
    (lz / "bad-unreadable.parquet").write_bytes(b"not a parquet file")
    champion_before = alias(root, "champion")

    proc = mlpipe(root, "run", check=False)
    assert proc.returncode == 3, proc.stderr[-2000:]
    assert f"accepted {good_path.name}; quarantined" in proc.stdout
    expected = {
        "bad-missing-column.parquet": "carrier | required column is missing",
        "bad-wrong-type.parquet": "distance | type string cannot be read as int64",
        "bad-nulls.parquet": "origin | null where none are allowed",
        "bad-out-of-range.parquet": "hour | above max 23.0",
        "bad-duplicates.parquet": "<rows> | duplicates rows already in data/ | 200",
        "bad-unreadable.parquet": "<file> | unreadable: ",
    }
    qdir = root / "quarantine"
    for name, rule in expected.items():
        assert (qdir / name).exists(), f"{name} kept in quarantine, never deleted"
        report = (qdir / f"{name}.report.md").read_text()
        assert "FAILED" in report and rule in report, report
        assert f"QUARANTINED:   {qdir / name}.report.md" in proc.stdout
    assert landing(root) == []
    assert (root / "data" / good_path.name).exists()
    assert alias(root, "champion") == champion_after_gate(root, champion_before, versions(root)[-1])
    assert "data: add " + good_path.name in git(root, "log", "--format=%s", "-2")


def _kill_when(root: Path, marker: str, timeout_s: float = 300) -> int:
    """Start `mlpipe run`, SIGKILL its whole process tree when `marker` appears in its log."""
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "mlpipe.cli", "run"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    deadline = time.monotonic() + timeout_s
    seen = []
    try:
        for line in proc.stdout:
            seen.append(line)
            if marker in line:
                os.killpg(proc.pid, signal.SIGKILL)
                break
            if time.monotonic() > deadline:
                break
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
    assert any(marker in line for line in seen), "".join(seen[-30:])
    return proc.returncode


@pytest.mark.parametrize("marker", ["event=snapshot_start", "Task run 'track"])
def test_run_killed_mid_task_is_completed_by_the_next_run(project_copy, marker):
    root = project_copy
    batch = _good_batch(root).name
    assert _kill_when(root, marker) == -signal.SIGKILL
    assert versions(root) == ["1"], "nothing half-done is registered"
    if marker == "event=snapshot_start":
        assert landing(root) == [batch], "the landing file stays until its snapshot is committed"

    proc = mlpipe(root, "run")
    assert f"accepted {batch}" in proc.stdout or "accepted none" in proc.stdout
    assert landing(root) == []
    assert (root / "data" / batch).exists()
    assert versions(root) == ["1", "2"]
    assert git(root, "status", "--porcelain") == ""
    assert "Running stage" not in dvc(root, "repro").stdout
    assert json.loads(dvc(root, "status", "--json").stdout or "{}") == {}


def test_two_runs_at_once_take_turns(project_copy):
    root = project_copy
    batch = _good_batch(root).name
    env = tool_env()
    env.pop("MLFLOW_TRACKING_URI", None)
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "mlpipe.cli", "run"],
            cwd=root,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outs = [p.communicate(timeout=600) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    verdicts = sorted(o[0].splitlines()[0] for o in outs)
    assert (
        verdicts[0].startswith("mlpipe run: nothing to train")
        and verdicts[1] == "mlpipe run: trained a new model"
    )
    assert versions(root) == ["1", "2"]
    assert git(root, "log", "--format=%s").count(f"data: add {batch}") == 1
    assert git(root, "status", "--porcelain") == ""
