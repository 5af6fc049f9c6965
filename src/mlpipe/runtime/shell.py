"""Running the external tools (git, dvc) with the project's environment: telemetry off, this venv first."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from mlpipe.errors import ToolError

# Telemetry of every tool the project runs is off; nothing here may call out.
OFFLINE_ENV = {
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "GIT_TERMINAL_PROMPT": "0",
}


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


def run_tool(
    args: list[str],
    cwd: Path,
    check: bool = True,
    env: dict[str, str] | None = None,
    timeout_s: float | None = None,
) -> subprocess.CompletedProcess:
    """Run a command in `cwd`, capturing output; raise ToolError naming it when it fails and `check`
    (subprocess.TimeoutExpired, the command killed, when it outlasts `timeout_s`)."""
    if args[0] == "dvc":
        args = [str(Path(sys.executable).parent / "dvc"), *args[1:]]
    proc = subprocess.run(
        args, cwd=cwd, env=env or tool_env(), capture_output=True, text=True, timeout=timeout_s
    )
    if check and proc.returncode != 0:
        raise ToolError(
            f"`{' '.join([Path(args[0]).name, *args[1:]])}` failed in {cwd} "
            f"(exit {proc.returncode}):\n{proc.stderr.strip() or proc.stdout.strip()}"
        )
    return proc


def pid_alive(pid: int) -> bool:
    """True while a process with this id exists on this machine (kill -9 and the OOM killer leave
    the records of a process that is gone)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, owned by someone else
        return True
    return True


def stop_process_group(proc: subprocess.Popen, grace_s: float = 20) -> None:
    """SIGTERM a process started in a session or process group of its own (start_new_session=True,
    runtime.guard.guarded_popen) and every process of its group; SIGKILL what is left after `grace_s`.
    Returns once the whole group is gone, also the workers that outlive the leader (a server's uvicorn
    child finishing its shutdown, a worker that ignores SIGTERM). Its watchdog, if any, is stopped too."""
    from mlpipe.runtime.guard import stop_group

    # The group id stays the leader's pid while any member lives (Linux does not reuse a pid that is
    # still some group's id), so the group is addressed by it even after the leader exited.
    stop_group(proc.pid, grace_s, reap=proc.poll)
    proc.wait(timeout=10)
    watchdog = getattr(proc, "watchdog", None)
    if watchdog is not None and watchdog.poll() is None:
        watchdog.terminate()  # its server is stopped: nothing left to guard
        watchdog.wait(timeout=10)
