"""`mlpipe schedule` serves the retrain deployment on a local Prefect server and the schedule fires."""

from __future__ import annotations

import json
import sys
import time
import urllib.request

import pytest
from conftest import free_port

from mlpipe.runtime.localserver import launch
from mlpipe.runtime.shell import stop_process_group, tool_env

pytestmark = pytest.mark.integration


def _post(url: str, body: dict) -> list | dict:
    req = urllib.request.Request(
        url, data=json.dumps(body).encode(), method="POST", headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(req, timeout=10) as r:
        return json.load(r)


def test_served_deployment_with_a_near_term_schedule_creates_and_runs_a_flow_run(project_copy):
    port = free_port()
    env = tool_env()
    for key in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "PREFECT_HOME"):
        env.pop(key, None)
    proc = launch(
        [sys.executable, "-m", "mlpipe.cli", "schedule", "--port", str(port), "--interval", "10"],
        project_copy,
        env,
        project_copy / ".mlpipe" / f"schedule-{port}.log",
    )
    api = f"http://127.0.0.1:{port}/api"
    states: list[str] = []
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and "COMPLETED" not in states:
            assert proc.poll() is None, f"mlpipe schedule exited early:\n{proc.log_path.read_text()[-3000:]}"
            try:
                runs = _post(f"{api}/flow_runs/filter", {"flow_runs": {"deployment_id": {"is_null_": False}}})
                states = [r["state_type"] for r in runs]
            except OSError:
                pass
            time.sleep(2)
        assert "COMPLETED" in states, (
            f"no scheduled run completed within 240 s (states seen: {states}):\n"
            + proc.log_path.read_text()[-3000:]
        )
        deployments = _post(f"{api}/deployments/filter", {})
        assert deployments[0]["name"] == project_copy.name
        assert (
            deployments[0]["description"].startswith("Retrain ")
            and "the gate" in deployments[0]["description"]
        )
        assert deployments[0]["schedules"], "the deployment carries its schedule"
    finally:
        stop_process_group(proc, grace_s=30)
