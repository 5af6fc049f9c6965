"""Nothing left behind: SIGTERM, SIGINT or SIGKILL to the main process of `mlpipe run` (an operator, Ctrl-C,
the OOM killer) ends every process the run started, its own Prefect server first; the next run completes
and leaves no Prefect flow run and no MLflow run RUNNING; the killed run's flow run is Crashed.

One project goes through the three signals and then one more run (a shared fixture: each `mlpipe run`
costs tens of seconds here); each test reads what happened."""

from __future__ import annotations

import json
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from conftest import copy_project, tracking_client

from mlpipe.runtime.shell import tool_env

pytestmark = pytest.mark.integration

SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGKILL]
SERVER_APP = "prefect.server.api.server:create_app"  # the command line of the run's Prefect server


def _env(tmp: Path) -> dict[str, str]:
    """A user's environment: no shared Prefect server (each run starts its own), the project's Prefect
    state, and a temporary folder of the test's own, so anything left in it is this project's."""
    env = tool_env({"TMPDIR": str(tmp)})
    for key in ("MLFLOW_TRACKING_URI", "PREFECT_API_URL", "PREFECT_HOME"):
        env.pop(key, None)
    return env


def _descendants(proc: subprocess.Popen) -> list[psutil.Process]:
    try:
        return psutil.Process(proc.pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def _cmdline(p: psutil.Process) -> str:
    try:
        return " ".join(p.cmdline())
    except psutil.Error:  # ended meanwhile (a short-lived git call)
        return ""


def _alive(procs: list[psutil.Process]) -> list[psutil.Process]:
    """The processes still running (is_running also checks the start time: a reused pid is not them)."""
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(p)
        except psutil.NoSuchProcess:
            pass
    return left


def _signal_run(root: Path, env: dict[str, str], signum: int, logs: Path) -> dict:
    """Start `mlpipe run --flow` in a session of its own; once its flow run has begun and its Prefect
    server runs, send `signum` to the main process alone; say what ended and what was left."""
    out, err = logs / f"{signum}.out", logs / f"{signum}.err"
    with open(out, "w") as stdout, open(err, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpipe.cli", "run", "--flow"],
            cwd=root,
            env=env,
            stdout=stdout,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        below: list[psutil.Process] = []
        while time.monotonic() < deadline and proc.poll() is None:
            below = _descendants(proc)
            server = any(SERVER_APP in _cmdline(p) for p in _alive(below))
            if server and "Beginning flow run" in err.read_text():
                break
            time.sleep(0.2)
        else:
            raise AssertionError(f"no flow run with its server within 240 s:\n{err.read_text()[-3000:]}")
        below = _descendants(proc)  # as the signal finds them
        commands = [_cmdline(p) for p in below]
        sent = time.monotonic()
        proc.send_signal(signum)
        returncode = proc.wait(timeout=60)
        exited_s = time.monotonic() - sent
        deadline = time.monotonic() + 30
        while _alive(below) and time.monotonic() < deadline:
            time.sleep(0.1)
        return {
            "pid": proc.pid,
            "returncode": returncode,
            "exited_s": exited_s,
            "gone_s": time.monotonic() - sent,
            "below": commands,
            "left": [_cmdline(p) or str(p.pid) for p in _alive(below)],
            "stderr": err.read_text(),
        }
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)


def _flow_runs(root: Path) -> list[dict]:
    """Every flow run in the project's Prefect database, with its state and owner tags."""
    with sqlite3.connect(root / ".prefect" / "prefect.db") as db:
        rows = db.execute(
            "select f.name, f.state_type, s.message, f.tags from flow_run f "
            "left join flow_run_state s on s.id = f.state_id"
        ).fetchall()
    return [{"name": n, "state": t, "message": m, "tags": json.loads(tags)} for n, t, m, tags in rows]


@pytest.fixture(scope="module")
def signalled(first_run, tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("signals")
    root = copy_project(first_run[0], base / "project")
    tmp, logs = base / "tmp", base / "logs"
    tmp.mkdir()
    logs.mkdir()
    env = _env(tmp)
    killed = {signum: _signal_run(root, env, signum, logs) for signum in SIGNALS}
    left_in_tmp = sorted(p.name for p in tmp.iterdir())
    after = subprocess.run(
        [sys.executable, "-m", "mlpipe.cli", "run", "--flow"],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return {
        "root": root,
        "killed": killed,
        "left_in_tmp": left_in_tmp,
        "after": after,
        "tmp_after": sorted(p.name for p in tmp.iterdir()),
    }


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_a_signal_to_the_main_process_ends_everything_the_run_started(signalled, signum):
    r = signalled["killed"][signum]
    assert any(SERVER_APP in c for c in r["below"]), r["below"]
    assert any("guard.py watch" in c for c in r["below"]), r["below"]
    assert r["left"] == [], f"still running {r['gone_s']:.1f} s after {signal.Signals(signum).name}"
    assert r["gone_s"] < 30
    if signum == signal.SIGKILL:
        assert r["returncode"] == -signal.SIGKILL
        return
    name = signal.Signals(signum).name
    assert r["returncode"] == 128 + signum, r["stderr"][-2000:]
    assert r["exited_s"] < 30, "ends promptly"
    assert r["stderr"].splitlines()[-1] == f"mlpipe: stopped by {name}; the servers it started are stopped"
    assert "Traceback" not in r["stderr"], r["stderr"][-3000:]


def test_no_folder_is_left_behind(signalled):
    assert signalled["left_in_tmp"] == [] and signalled["tmp_after"] == []


def test_the_next_run_completes_and_nothing_stays_running(signalled):
    root, after = signalled["root"], signalled["after"]
    assert after.returncode == 0, after.stderr[-3000:]
    runs = _flow_runs(root)
    assert [r for r in runs if r["state"] in ("RUNNING", "PENDING")] == []
    client = tracking_client(root)
    running = client.search_runs(
        [e.experiment_id for e in client.search_experiments()], "attributes.status = 'RUNNING'"
    )
    assert running == []


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_the_interrupted_flow_run_is_crashed(signalled, signum):
    pid = signalled["killed"][signum]["pid"]
    (run,) = [r for r in _flow_runs(signalled["root"]) if f"mlpipe-pid:{pid}" in r["tags"]]
    assert run["state"] == "CRASHED", run
    if signum == signal.SIGKILL:  # nothing ran to say so: the next run did
        assert run["message"].startswith(f"process {pid} on ") and run["message"].endswith("ended mid-run")
        assert "event=crashed_flow_runs" in signalled["after"].stderr
    else:
        assert "aborted by" in run["message"], run
