"""Running the external tools (git, dvc) with the project's environment: telemetry off, this venv first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

# Telemetry of every tool the project runs is off; nothing here may call out.
OFFLINE_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


class ToolError(RuntimeError):
    """An external command failed; the message carries the command and its stderr."""


def tool_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for subprocesses: telemetry off and this interpreter's bin/ first on PATH,
    so DVC stage commands (`python -m mlpipe.stages.X`) run in the same venv."""
    env = dict(os.environ)
    env.update(OFFLINE_ENV)
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = bindir + os.pathsep + env.get("PATH", "")
    if extra:
        env.update(extra)
    return env


def run_tool(args: list[str], cwd: Path, check: bool = True, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run a command in `cwd`, capturing output; raise ToolError naming it when it fails and `check`."""
    if args[0] == "dvc":
        args = [str(Path(sys.executable).parent / "dvc"), *args[1:]]
    proc = subprocess.run(args, cwd=cwd, env=env or tool_env(), capture_output=True, text=True)
    if check and proc.returncode != 0:
        raise ToolError(f"`{' '.join([Path(args[0]).name, *args[1:]])}` failed in {cwd} "
                        f"(exit {proc.returncode}):\n{proc.stderr.strip() or proc.stdout.strip()}")
    return proc


def stop_process_group(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM a process started with start_new_session=True and all its children; SIGKILL after `grace_s`."""
    import signal

    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)


def start_prefect_server(port: int, prefect_home: Path, cwd: Path | None = None, timeout_s: float = 120) -> subprocess.Popen:
    """`prefect server start` on 127.0.0.1:`port` with its state (and server.log) under `prefect_home`,
    in a session of its own (stop it with stop_process_group); returns once /api/health answers."""
    import time
    import urllib.request

    prefect_home.mkdir(parents=True, exist_ok=True)
    log_path = prefect_home / "server.log"
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", "127.0.0.1",
                                 "--port", str(port)], cwd=cwd, env=tool_env({"PREFECT_HOME": str(prefect_home)}),
                                stdout=log, stderr=log, start_new_session=True)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolError(f"prefect server exited with {proc.returncode}; see {log_path}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/health", timeout=2):
                return proc
        except OSError:
            time.sleep(0.5)
    stop_process_group(proc)
    raise ToolError(f"prefect server not healthy on 127.0.0.1:{port} within {timeout_s:.0f} s; see {log_path}")
