"""`mlpipe ui` as a user starts it: the Prefect UI on a port of the user's choosing tells the browser to call
the API on that same port (its /ui-settings), the MLflow UI answers on its port, and SIGTERM or Ctrl-C
(SIGINT) to `mlpipe ui` ends every process it started before it exits: no server, worker or watchdog is
left, and nothing listens on the port any more."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import psutil
import pytest
from conftest import REPO

from mlpipe.runtime.localserver import free_port, http_status
from mlpipe.runtime.shell import tool_env

pytestmark = pytest.mark.integration

SIGNALS = [signal.SIGTERM, signal.SIGINT]


def _get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read())


def _cmdline(pid: int) -> str:
    """The command line of `pid` read from /proc ('' once it is gone or a zombie has none)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def _running(pid: int) -> bool:
    """True while `pid` exists and is not a zombie (a zombie has ended; its parent has yet to collect it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def _all_pids() -> list[int]:
    return [int(name) for name in (p.name for p in Path("/proc").iterdir()) if name.isdigit()]


def _process_groups(pids: list[int]) -> set[int]:
    groups = set()
    for pid in pids:
        try:
            groups.add(os.getpgid(pid))
        except ProcessLookupError:
            pass
    return groups


def _members(pgid: int) -> list[int]:
    """The running processes of process group `pgid`, found by walking /proc."""
    found = []
    for pid in _all_pids():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            found.append(pid)
    return found


def _mentioning(text: str) -> list[int]:
    """The running processes whose command line holds `text` (this test's free port: a server on it)."""
    return [pid for pid in _all_pids() if text in _cmdline(pid) and _running(pid)]


def _descendants(pid: int) -> list[int]:
    try:
        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def _wait_answering(proc: subprocess.Popen, url: str, err: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mlpipe ui exited with {proc.returncode}:\n{err.read_text()[-3000:]}")
        if http_status(url) == 200:
            return
        time.sleep(0.5)
    raise AssertionError(f"{url} did not answer within {timeout_s} s:\n{err.read_text()[-3000:]}")


@pytest.fixture
def project(tmp_path) -> Path:
    """A project as far as `mlpipe ui` looks: its params.yaml (the stores are made on first use)."""
    root = tmp_path / "project"
    root.mkdir()
    shutil.copy2(REPO / "params.yaml", root / "params.yaml")
    return root


def _start_ui(root: Path, port: int, *args: str) -> tuple[subprocess.Popen, Path]:
    """`mlpipe ui --port PORT ...` in a session of its own (as a terminal would run it), its state in the
    project. The session's Prefect server is in the environment (PREFECT_API_URL, set by conftest): the UI
    must name its own port all the same."""
    env = tool_env({"PREFECT_HOME": str(root / ".prefect")})
    env.pop("MLFLOW_TRACKING_URI", None)
    err = root.parent / f"ui-{port}.err"
    with open(root.parent / f"ui-{port}.out", "w") as out, open(err, "w") as errors:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpipe.cli", "ui", "--port", str(port), *args],
            cwd=root,
            env=env,
            stdout=out,
            stderr=errors,
            start_new_session=True,
        )
    return proc, err


def _stop_and_find_leftovers(proc: subprocess.Popen, signum: int, port: int, err: Path) -> dict:
    """Send `signum` to `mlpipe ui` alone, wait (bounded) for it to exit, then say at once, without a grace
    period, what it had started that still runs."""
    below = _descendants(proc.pid)
    groups = _process_groups(below) - {proc.pid}
    commands = [_cmdline(pid) for pid in below]
    proc.send_signal(signum)
    returncode = proc.wait(timeout=60)
    return {
        "returncode": returncode,
        "below": commands,
        "left": [_cmdline(pid) or str(pid) for pid in below if _running(pid)],
        "in_groups": {g: _members(g) for g in groups if _members(g)},
        "on_port": [_cmdline(pid) for pid in _mentioning(f"--port {port}") if pid != proc.pid],
        "listening": http_status(f"http://127.0.0.1:{port}/") is not None,
        "stderr": err.read_text(),
    }


def _assert_nothing_left(r: dict, signum: int, server: str) -> None:
    assert any(server in c for c in r["below"]), r["below"]
    assert any("guard.py watch" in c for c in r["below"]), r["below"]
    assert r["left"] == [] and r["in_groups"] == {} and r["on_port"] == [], r
    assert not r["listening"]
    assert r["returncode"] == 128 + signum, r["stderr"][-2000:]
    name = signal.Signals(signum).name
    assert r["stderr"].splitlines()[-1] == f"mlpipe: stopped by {name}; the servers it started are stopped"
    assert "Traceback" not in r["stderr"], r["stderr"][-3000:]


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_prefect_ui_on_any_port_calls_its_own_api_and_stops_with_mlpipe(project, signum):
    port = free_port()
    proc, err = _start_ui(project, port, "--prefect")
    try:
        _wait_answering(proc, f"http://127.0.0.1:{port}/api/health", err)
        settings = _get_json(f"http://127.0.0.1:{port}/ui-settings")  # what the UI asks before anything
        assert settings["api_url"] == f"http://127.0.0.1:{port}/api", settings
        assert _get_json(f"{settings['api_url']}/health") is True
        assert http_status(f"http://127.0.0.1:{port}/") == 200  # the UI's page itself
        r = _stop_and_find_leftovers(proc, signum, port, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    _assert_nothing_left(r, signum, "prefect server start")


@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
def test_mlflow_ui_answers_on_its_port_and_stops_with_mlpipe(project, signum):
    port = free_port()
    proc, err = _start_ui(project, port)
    try:
        _wait_answering(proc, f"http://127.0.0.1:{port}/health", err)
        found = _get_json(f"http://127.0.0.1:{port}/ajax-api/2.0/mlflow/experiments/search?max_results=5")
        assert [e["name"] for e in found["experiments"]] == ["Default"]  # this project's new store
        assert http_status(f"http://127.0.0.1:{port}/") == 200
        r = _stop_and_find_leftovers(proc, signum, port, err)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
    _assert_nothing_left(r, signum, "uvicorn")
