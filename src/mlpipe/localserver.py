"""Start `mlpipe serve` as a process of its own on 127.0.0.1 and a free port, and wait (bounded) until it
answers: used by `mlpipe demo`, the benchmarks and the deployment tests alike."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

from mlpipe.shell import ToolError, tool_env


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ready_status(base: str) -> int | None:
    try:
        with urllib.request.urlopen(f"{base}/ready", timeout=2) as answer:
            return answer.status
    except urllib.error.HTTPError as exc:
        return exc.code
    except OSError:
        return None


def start_service(root: Path, *args: str, wait_ready: bool = True, timeout_s: float = 90,
                  env: dict[str, str] | None = None) -> tuple[str, subprocess.Popen]:
    """(base URL, process) of `mlpipe serve` in its own session; returns once /ready says 200 (or, with
    `wait_ready=False`, once it answers at all). Its output goes to `.mlpipe/serve-<port>.log` in the
    project (a pipe nobody reads would block a chatty server). Stop it with `shell.stop_process_group`."""
    port = free_port()
    environment = env or tool_env()
    log_path = Path(root) / ".mlpipe" / f"serve-{port}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "mlpipe.cli", "serve", "--port", str(port), *args],
                                cwd=root, env=environment, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    proc.log_path = log_path
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolError(f"mlpipe serve exited with {proc.returncode}:\n{log_path.read_text()[-3000:]}")
        status = _ready_status(base)
        if status == 200 or (status == 503 and not wait_ready):
            return base, proc
        time.sleep(0.5)
    from mlpipe.shell import stop_process_group

    stop_process_group(proc)
    raise ToolError(f"mlpipe serve not ready on {base} within {timeout_s:.0f} s; see {log_path}")
