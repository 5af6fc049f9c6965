"""Start a local HTTP server (`mlpipe serve`, `mlflow server`, `mlpipe ui`, a Prefect server) as a process
of its own on 127.0.0.1 and a free port, and wait (bounded) until it answers: used by `mlpipe run`,
`mlpipe demo`, the benchmarks and the deployment tests alike. Every server is guarded (runtime.guard): it
ends with the process that started it, even when that one is killed. Its output goes to a log file (a
pipe nobody reads would block a chatty server), and a server that exits or never answers is reported
with the end of that log."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Sequence
from contextlib import suppress
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
    server_env = prefect_server_env("127.0.0.1", port, {"PREFECT_HOME": str(prefect_home), **(env or {})})
    capture = seed_prefect_database(prefect_home, cwd or Path.cwd(), server_env)
    proc = launch(
        prefect_server_command("127.0.0.1", port), cwd or Path.cwd(), server_env, prefect_home / "server.log"
    )
    wait_answering(proc, f"http://127.0.0.1:{port}/api/health", timeout_s)
    if capture is not None:
        capture_template(prefect_home / PREFECT_DB, capture)
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
    env = tool_env({"PREFECT_HOME": str(prefect_home), **TEMPORARY_PREFECT_ENV})
    capture = seed_prefect_database(prefect_home, cwd, env)
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
        env,
        prefect_home / "temporary-server.log",
    )
    url = f"http://127.0.0.1:{port}/api"
    if capture is not None:  # the caller waits for the server itself: the copy is taken beside it
        threading.Thread(
            target=capture_when_answering,
            args=(proc, f"{url}/health", prefect_home / PREFECT_DB, capture),
            name="mlpipe-prefect-template",
            daemon=True,
        ).start()
    return url, proc


# A project's Prefect database, migrated once per Prefect version and copied (issue 33): a new database
# costs the temporary server ~6 s of CPU (Alembic's migrations, then the block types) before it answers,
# more than half of its start; a copy of a migrated, empty one costs milliseconds, then the server checks
# it is at head and registers the blocks as on any start.
PREFECT_DB = "prefect.db"
# The tables a new database holds rows in once its server answers (the migrations' version and the block
# types Prefect registers at start); a copy with a row anywhere else (a flow run, a log, a variable) holds
# a project's own records and never becomes a template.
TEMPLATE_TABLES = frozenset({"alembic_version", "block_type", "block_schema", "block_schema_reference"})
DATABASE_SETTINGS = ("PREFECT_API_DATABASE_", "PREFECT_SERVER_DATABASE_")


def prefect_template_path() -> Path | None:
    """Where the template database of the installed Prefect lives (the user's cache: shared by every
    project on this machine, one per Prefect version since the migrations come with it); None when the
    version is unknown or MLPIPE_PREFECT_TEMPLATE=0 turns templates off."""
    if os.environ.get("MLPIPE_PREFECT_TEMPLATE", "1") == "0":
        return None
    try:
        version = importlib.metadata.version("prefect")
    except importlib.metadata.PackageNotFoundError:
        return None
    cache = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return cache / "mlpipe" / f"prefect-{version}.db"


def default_database(prefect_home: Path, cwd: Path, env: dict[str, str]) -> bool:
    """Whether the server will use the default SQLite file under `prefect_home`: no database setting in its
    environment, nor in a Prefect settings file it reads (the project's prefect.toml or .env, the home's
    profiles). Where unsure, not: the server then makes its database as it always did."""
    if any(key.startswith(DATABASE_SETTINGS) for key in env):
        return False
    for settings in (cwd / "prefect.toml", cwd / ".env", prefect_home / "profiles.toml"):
        try:
            if "database" in settings.read_text(errors="replace").lower():
                return False
        except OSError:
            continue
    return True


def seed_prefect_database(prefect_home: Path, cwd: Path, env: dict[str, str]) -> Path | None:
    """Before a Prefect server starts on `prefect_home`: when it would make a new default database there,
    put a copy of the template in its place (atomically: a half-copied file is never the database). Returns
    the template's path when there is none yet (the server's new database, once it answers, is captured
    as the template: capture_template), else None. Never fails: without a template the server migrates."""
    db = prefect_home / PREFECT_DB
    template = prefect_template_path()
    if template is None or db.exists() or not default_database(prefect_home, cwd, env):
        return None
    if not template.exists():
        return template
    partial = db.with_name(f"{PREFECT_DB}.{os.getpid()}.partial")
    try:
        shutil.copyfile(template, partial)
        os.replace(partial, db)
    except OSError:
        partial.unlink(missing_ok=True)
    return None


def holds_only_template_rows(connection: sqlite3.Connection) -> bool:
    """Whether a Prefect database holds rows only in TEMPLATE_TABLES, and is migrated (pure read)."""
    tables = [row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
    if "alembic_version" not in tables:
        return False
    return all(
        connection.execute(f'SELECT 1 FROM "{name}" LIMIT 1').fetchone() is None
        for name in tables
        if name not in TEMPLATE_TABLES and not name.startswith("sqlite_")
    )


def capture_template(db: Path, template: Path) -> bool:
    """Copy a just-started server's database `db` to `template` (SQLite's online backup: a consistent
    copy while the server runs, its write-ahead log included, as one self-contained file), unless it holds
    anything of a project's own already; atomically, so concurrent captures leave one whole template.
    Returns whether it did. Never fails: a template is a saving, not a record."""
    partial = template.with_name(f"{template.name}.{os.getpid()}.{threading.get_ident()}.partial")
    try:
        template.parent.mkdir(parents=True, exist_ok=True)
        remove_stale_partials(template)
        source = sqlite3.connect(db, timeout=5)
        try:
            copy = sqlite3.connect(partial)
            try:
                source.backup(copy)
                keep = holds_only_template_rows(copy)
                copy.execute("PRAGMA journal_mode = DELETE")
            finally:
                copy.close()
        finally:
            source.close()
        if keep:
            os.replace(partial, template)
            return True
    except (OSError, sqlite3.Error):
        pass
    partial.unlink(missing_ok=True)
    return False


STALE_PARTIAL_S = 600  # a capture takes milliseconds: a partial copy this old was left by a killed process


def remove_stale_partials(template: Path) -> None:
    """Remove the partial copies of `template` that processes killed mid-capture left behind."""
    for stale in template.parent.glob(f"{template.name}.*.partial"):
        with suppress(OSError):
            if time.time() - stale.stat().st_mtime > STALE_PARTIAL_S:
                stale.unlink()


def capture_when_answering(proc: subprocess.Popen, health_url: str, db: Path, template: Path) -> None:
    """capture_template once the server answers `health_url` (its database migrated, its blocks
    registered); nothing when it exits or does not answer within two minutes."""
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if http_status(health_url) == 200:
            capture_template(db, template)
            return
        time.sleep(0.1)
