"""Closing the loop: real traffic through `mlpipe serve` lands in the prediction log with feedback;
`mlpipe monitor` (Evidently on the champion's own logged rows vs its training data) finds the healthy case
healthy, drifted traffic a reason to retrain (it lands the labelled traffic and the source's next period,
and the retrain flow takes them in and judges them), a newly promoted champion without rows of its own
no verdict yet, and a model whose live performance fell below the floor a reason to retire (alert state,
exit 5)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pandas as pd
import pytest
from conftest import commit_all, edit_params, mlpipe, records, start_server, stop, tracking_client

from mlpipe.config import load_params

pytestmark = pytest.mark.integration


def send(root, frame: pd.DataFrame, labels) -> None:
    """Serve `frame` in batches of 200 records, attach `labels` as feedback, stop the server (log drained)."""
    params = load_params(root / "params.yaml")
    base, proc = start_server(root)
    try:
        for start in range(0, len(frame), 200):
            part = frame.iloc[start : start + 200]
            answer = httpx.post(
                f"{base}/predict", json={"records": records(part, params.features.columns)}, timeout=60
            )
            assert answer.status_code == 200, answer.text[:500]
            fb = httpx.post(
                f"{base}/feedback",
                json={
                    "request_id": answer.json()["request_id"],
                    "labels": [int(x) for x in labels[start : start + 200]],
                },
            )
            assert fb.status_code == 200
    finally:
        stop(proc)


@pytest.fixture
def train_rows(project_copy):
    return (
        pd.read_parquet(project_copy / "artifacts/split/train.parquet")
        .sample(n=1000, random_state=1)
        .reset_index(drop=True)
    )


def test_healthy_then_drifted_traffic_retrained_on_its_labels_then_judged_per_version(
    project_copy, train_rows
):
    root = project_copy
    send(root, train_rows, train_rows["late"].to_numpy())
    healthy = json.loads(mlpipe(root, "monitor", "--json", "--no-trigger").stdout)
    assert healthy["rows_in_window"] == 1000 and healthy["labels"] == 1000
    assert healthy["champion"] == "champion v1: 1,000 logged rows of its own, 1,000 labelled"
    assert healthy["versions"] == {}
    assert healthy["retrain"] is False and healthy["retire"] is False, healthy["reasons"]
    assert healthy["input_drift"]["drift_share"] <= 0.5 and healthy["live_metrics"]["roc_auc"] > 0.55
    run = tracking_client(root).get_run(healthy["monitoring_run_id"])
    assert (
        run.data.tags["mlpipe.kind"] == "monitoring"
        and run.data.tags["mlpipe.monitors"] == healthy["champion_run_id"]
    )
    files = {a.path for a in tracking_client(root).list_artifacts(run.info.run_id, "monitor")}
    assert {"monitor/drift.html", "monitor/drift.json", "monitor/decision.json"} <= files
    page = Path(tracking_client(root).download_artifacts(run.info.run_id, "monitor/drift.html")).read_text()
    assert "<title>Input drift: prediction log vs training data of" in page
    assert f"training split of run {healthy['champion_run_id']}" in page and "1000 (" in page

    shifted = train_rows.assign(
        temp=train_rows["temp"] + 45,
        dewp=train_rows["dewp"] + 40,
        humid=95.0,
        wind_speed=train_rows["wind_speed"] * 3,
        visib=0.5,
        pressure=990.0,
        hour=23,
        minute=59,
        distance=4000,
    )
    send(root, shifted, shifted["late"].to_numpy())
    edit_params(root, monitor={"feedback_as_batch": True})
    commit_all(root, "monitor: labelled traffic becomes training data")
    d = json.loads(mlpipe(root, "monitor", "--json").stdout)
    assert d["retrain"] is True and any(r.startswith("input drift share") for r in d["reasons"])
    # the 2,000 labelled rows (log ids 1..2000) and the week after the data (a time source) were landed
    new = d["new_data"]
    assert new["feedback"] == ["feedback-1-2000.parquet"] and new["period"] == "batch-2013-01-15.parquet"
    assert new["line"].startswith("retrain (input drift share") and "feedback-1-2000.parquet" in new["line"]
    run = d["retrain_run"]
    # the retrain's state is named after its gate's outcome (a Completed state: mlpipe.flows.retrain_results)
    assert run["state"] in {"Promoted", "Kept champion", "Not promoted"}, run
    s = run["summary"]
    assert s["accepted"] == ["batch-2013-01-15.parquet", "feedback-1-2000.parquet"] and s["trained"], s
    assert s["model_version"] == "2" and s["gate_decision"], "registered and judged by the gate"
    assert (root / "data" / "feedback-1-2000.parquet").exists()
    assert not list((root / "landing").glob("*.parquet")), "taken in, not left waiting"

    # the champion is now version 2 (the gate's or, when it kept v1, a hand promotion's doing): every logged
    # row was answered by version 1, so the champion has no verdict yet; v1's figures are information
    client = tracking_client(root)
    if client.get_model_version_by_alias("flights-late", "champion").version != "2":
        client.set_registered_model_alias("flights-late", "champion", "2")
    after = mlpipe(root, "monitor", "--no-trigger")
    lines = after.stdout.splitlines()
    head = "mlpipe monitor: no verdict yet; 2000 rows in window, input drift share None"
    assert lines[0].startswith(head), lines
    assert lines[1:3] == [
        "  champion v2: 0 logged rows of its own (2,000 by v1)",
        "  reason: champion v2: 0 logged rows of its own (2,000 by v1), under monitor.min_rows 200: "
        "no verdict yet",
    ], after.stdout
    assert (
        lines[3].startswith(
            "  v1 (not the champion; information only): 2,000 rows, 2,000 labelled; live roc_auc 0."
        )
        and "input drift share" in lines[3]
    ), after.stdout


def test_live_performance_below_the_floor_retires_the_model(project_copy, train_rows):
    root = project_copy
    send(root, train_rows, 1 - train_rows["late"].to_numpy())  # feedback says the opposite of the truth
    proc = mlpipe(root, "monitor", "--no-trigger", check=False)
    assert proc.returncode == 5, proc.stderr[-2000:]
    assert (
        "mlpipe monitor: RETIRE" in proc.stdout and "< monitor.floor 0.55: retire this model" in proc.stdout
    )
    base, server = start_server(root)
    try:
        info = httpx.get(f"{base}/model").json()
        assert info["status"] == "degraded" and "retire this model" in info["status_reason"]
    finally:
        stop(server)
