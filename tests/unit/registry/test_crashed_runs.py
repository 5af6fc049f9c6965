"""A run left RUNNING by a process that died (kill -9 during `track`, the OOM killer) is marked FAILED by
the next run, with the reason; live processes' runs and other hosts' runs are left alone."""

from __future__ import annotations

import os
import socket
import subprocess

from mlpipe.registry import tags as tag
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.tracking import fail_crashed_runs


def test_only_runs_of_dead_processes_on_this_host_are_failed(tmp_path):
    client = mlflow_client(f"sqlite:///{tmp_path / 'mlflow.db'}")
    exp = client.create_experiment("e", artifact_location=str(tmp_path / "artifacts"))
    gone = subprocess.Popen(["true"])
    gone.wait()
    host = socket.gethostname()
    dead = client.create_run(exp, tags={tag.HOST: host, tag.PID: str(gone.pid)}).info.run_id
    live = client.create_run(exp, tags={tag.HOST: host, tag.PID: str(os.getpid())}).info.run_id
    elsewhere = client.create_run(exp, tags={tag.HOST: "another-host", tag.PID: str(gone.pid)}).info.run_id
    assert fail_crashed_runs(client, exp) == [dead]
    status = {r: client.get_run(r).info.status for r in (dead, live, elsewhere)}
    assert status == {dead: "FAILED", live: "RUNNING", elsewhere: "RUNNING"}
    assert f"process {gone.pid} on {host} ended mid-run" == client.get_run(dead).data.tags[tag.CRASHED]
    assert fail_crashed_runs(client, exp) == []  # once
