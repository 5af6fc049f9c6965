"""Start a local HTTP server (`mlpipe serve`, `mlflow server`, `mlpipe ui`, a Prefect server) as a process
of its own on 127.0.0.1 and a free port, and wait (bounded) until it answers: used by `mlpipe run`,
`mlpipe demo`, the benchmarks and the deployment tests alike. Every server is guarded (runtime.guard): it
ends with the process that started it, even when that one is killed. Its output goes to a log file (a
pipe nobody reads would block a chatty server), and a server that exits or never answers is reported
with the end of that log."""

from __future__ import annotations

import importlib.util
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Sequence
from pathlib import Path

from mlpipe.errors import ToolError
from mlpipe.runtime.guard import guarded_popen
from mlpipe.runtime.shell import stop_process_group, tool_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_status(url: str) -> int | None:
    """The HTTP status `url` answers with, or None while nothing answers."""
    try:
        with urllib.request.urlopen(url, timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def launch(cmd: Sequence[str], cwd: Path, env: dict[str, str], log_path: Path) -> subprocess.Popen:
    """`cmd` in its own session, guarded (it ends when this process ends, even by SIGKILL), with its output
    appended to `log_path` (kept on the process as .log_path). Stop it with stop_process_group."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = guarded_popen(cmd, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    proc.log_path = log_path
    return proc


def wait_answering(
    proc: subprocess.Popen, url: str, timeout_s: float, accept: Collection[int] = (200,)
) -> None:
    """Return once `url` answers with a status in `accept`; raise ToolError (with the end of the log)
    when the process exits first, or stop it and raise when the deadline passes."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            name = " ".join([Path(proc.args[0]).name, *proc.args[1:4]])  # e.g. "python -m mlpipe.cli serve"
            raise ToolError(f"{name} exited with {proc.returncode}:\n{proc.log_path.read_text()[-3000:]}")
        if http_status(url) in accept:
            return
        time.sleep(0.5)
    stop_process_group(proc)
    raise ToolError(f"{url} did not answer within {timeout_s:.0f} s:\n{proc.log_path.read_text()[-3000:]}")


def start_service(
    root: Path, *args: str, wait_ready: bool = True, timeout_s: float = 90, env: dict[str, str] | None = None
) -> tuple[str, subprocess.Popen]:
    """(base URL, process) of `mlpipe serve` in its own session; returns once /ready says 200 (or, with
    `wait_ready=False`, once it answers at all). Its output goes to `.mlpipe/serve-<port>.log` in the
    project. Stop it with `runtime.shell.stop_process_group`."""
    port = free_port()
    proc = launch(
        [sys.executable, "-m", "mlpipe.cli", "serve", "--port", str(port), *args],
        root,
        env or tool_env(),
        Path(root) / ".mlpipe" / f"serve-{port}.log",
    )
    base = f"http://127.0.0.1:{port}"
    wait_answering(proc, f"{base}/ready", timeout_s, accept=(200,) if wait_ready else (200, 503))
    return base, proc


def prefect_server_command(host: str, port: int) -> list[str]:
    """`prefect server start` (API and UI) on `host`:`port`, by this interpreter's Prefect."""
    return [
        str(Path(sys.executable).parent / "prefect"),
        "server",
        "start",
        "--host",
        host,
        "--port",
        str(port),
    ]


def prefect_server_env(host: str, port: int, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of `prefect_server_command(host, port)`: the server's own settings name its address,
    so the UI's API URL (what its /ui-settings answers, which the browser then calls) follows the port.
    `--port` alone leaves it at PREFECT_API_URL, else 127.0.0.1:4200: a blank UI on any other port."""
    return tool_env(
        {
            "PREFECT_SERVER_API_HOST": host,
            "PREFECT_SERVER_API_PORT": str(port),
            # The setting has two names: both set, so a stale value under either cannot win.
            "PREFECT_SERVER_UI_API_URL": f"http://{host}:{port}/api",
            "PREFECT_UI_API_URL": f"http://{host}:{port}/api",
            **(extra or {}),
        }
    )


def start_prefect_server(
    port: int,
    prefect_home: Path,
    cwd: Path | None = None,
    timeout_s: float = 120,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """`prefect server start` on 127.0.0.1:`port` with its state (and server.log) under `prefect_home`,
    in a session of its own (stop it with stop_process_group), `env` added to its environment; returns once
    /api/health answers."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    proc = launch(
        prefect_server_command("127.0.0.1", port),
        cwd or Path.cwd(),
        prefect_server_env("127.0.0.1", port, {"PREFECT_HOME": str(prefect_home), **(env or {})}),
        prefect_home / "server.log",
    )
    wait_answering(proc, f"http://127.0.0.1:{port}/api/health", timeout_s)
    return proc


# What Prefect's own temporary server sets (prefect.server.api.server.SubprocessASGIServer, 3.8): the API
# alone, no UI, only the services a temporary server runs.
TEMPORARY_PREFECT_ENV = {
    "PREFECT_UI_ENABLED": "0",
    "PREFECT__SERVER_EPHEMERAL": "1",
    "PREFECT__SERVER_FINAL": "1",
}


def launch_temporary_prefect(prefect_home: Path, cwd: Path) -> tuple[str, subprocess.Popen]:
    """(API URL, process) of the server Prefect would start for a process without PREFECT_API_URL (its
    temporary server: the API app under uvicorn, state under `prefect_home`), started by mlpipe instead, so
    it is guarded like every other server and starts while the caller imports. Returns at once; wait for
    `<url>/health` with wait_answering. Its log: `prefect_home`/temporary-server.log."""
    prefect_home.mkdir(parents=True, exist_ok=True)
    port = free_port()
    proc = launch(
        [
            sys.executable,
            "-m",
            "uvicorn",
            "--app-dir",  # as Prefect does: not the project's root, where a folder could shadow a package
            str(Path(importlib.util.find_spec("prefect").origin).parents[1]),
            "--factory",
            "prefect.server.api.server:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--log-level",
            "error",
            "--lifespan",
            "on",
        ],
        cwd,
        tool_env({"PREFECT_HOME": str(prefect_home), **TEMPORARY_PREFECT_ENV}),
        prefect_home / "temporary-server.log",
    )
    return f"http://127.0.0.1:{port}/api", proc
