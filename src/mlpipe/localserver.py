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
    `wait_ready=False`, once it answers at all). Stop it with `mlpipe.shell.stop_process_group`."""
    port = free_port()
    environment = env or tool_env()
    environment.pop("MLFLOW_TRACKING_URI", None)
    proc = subprocess.Popen([sys.executable, "-m", "mlpipe.cli", "serve", "--port", str(port), *args],
                            cwd=root, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ToolError(f"mlpipe serve exited with {proc.returncode}:\n{proc.stderr.read()[-3000:]}")
        status = _ready_status(base)
        if status == 200 or (status == 503 and not wait_ready):
            return base, proc
        time.sleep(0.5)
    from mlpipe.shell import stop_process_group

    stop_process_group(proc)
    raise ToolError(f"mlpipe serve not ready on {base} within {timeout_s:.0f} s")
