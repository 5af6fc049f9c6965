"""What every `mlpipe` command shares: the project it works on, its options, JSON output, Prefect state,
and how it ends on a signal (nothing left behind)."""

from __future__ import annotations

import inspect
import json
import os
import re
import socket
import sys
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.config import PARAMS_FILE, Params, ProjectPaths, load_params
from mlpipe.errors import ToolError
from mlpipe.runtime.guard import Stopped, orphaned_runs, owner_tags, stop_on_signals
from mlpipe.runtime.logs import event
from mlpipe.runtime.shell import pid_alive

ROOT_OPTION = Annotated[Path, typer.Option("--root", help="Project root (holds params.yaml and dvc.yaml).")]
JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def short_help(command: Callable) -> str:
    """A command's line in `mlpipe --help`: its docstring's first sentence on one line (Typer's rich help
    keeps a docstring's line breaks there, and the list read as broken lines)."""
    first = " ".join((inspect.getdoc(command) or "").split("\n\n")[0].split())
    return re.split(r"(?<=[.:;])\s", first)[0].rstrip(".:;")


def project(root: Path) -> ProjectPaths:
    """The project at `root`; a directory without params.yaml is a usage error."""
    root = root.resolve()
    if not (root / PARAMS_FILE).exists():
        raise typer.BadParameter(
            f"{root}: no {PARAMS_FILE} (rule: run inside an mlpipe project or pass --root)"
        )
    return ProjectPaths(root)


def project_params(paths: ProjectPaths) -> Params:
    return load_params(paths.root / PARAMS_FILE)


def echo_json(payload: dict) -> None:
    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


def use_project_prefect(paths: ProjectPaths) -> None:
    """Prefect state stays inside the project unless PREFECT_HOME/PREFECT_API_URL say otherwise
    (read by Prefect at import, so call this before importing it)."""
    os.environ.setdefault("PREFECT_HOME", str(paths.prefect_home))
    # The temporary server's first start on a cold machine (new database, imports off a cold disk)
    # took more than Prefect's default 20 s here; 20 s made the README's first command fail.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # mlpipe's own event lines also reach the Prefect run logs (and UI).
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mlpipe")
    # mlpipe's events before and after the flow (restoring an interrupted run's files) have no flow run to go
    # to: they stay in the terminal, without Prefect's UserWarning about it.
    os.environ.setdefault("PREFECT_LOGGING_TO_API_WHEN_MISSING_FLOW", "ignore")


@contextmanager
def stops_on_signals() -> Iterator[None]:
    """SIGTERM, SIGINT and SIGHUP end the command the way Ctrl-C would: what it started is stopped on the
    way out (a running flow is marked Crashed by Prefect), then one line `mlpipe: stopped by SIGTERM`."""
    try:
        with stop_on_signals():
            yield
    except Stopped as exc:
        # A ToolError carrying the signal's exit code (128 + its number) until errors.py has a class for it.
        error = ToolError(f"{exc}; the servers it started are stopped")
        error.exit_code = exc.exit_code
        raise error from None


@contextmanager
def project_prefect_api(paths: ProjectPaths) -> Iterator[Callable[[], None]]:
    """The Prefect API this command's flows report to, with the state in the project (use_project_prefect).
    Unless PREFECT_API_URL names one, a server of mlpipe's own: what Prefect's temporary server is, on a
    free loopback port, but guarded (it ends with this process, even on SIGKILL) and started at once, so it
    boots while the caller imports the flows. Yields `ready()`, which waits for it (bounded). On the way
    out Prefect's queued logs and events are sent first, then the server stops. Call before importing
    Prefect (it reads PREFECT_API_URL at import)."""
    use_project_prefect(paths)
    if os.environ.get("PREFECT_API_URL"):
        yield lambda: None
        return
    from mlpipe.runtime.localserver import launch_temporary_prefect, wait_answering
    from mlpipe.runtime.shell import stop_process_group

    url, server = launch_temporary_prefect(Path(os.environ["PREFECT_HOME"]), cwd=paths.root)
    timeout_s = float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"])
    with ExitStack() as stack:
        stack.callback(stop_process_group, server, 10)
        stack.callback(_send_prefect_queues)
        # Read by Prefect at import, and by the sweep's Dask workers. No UI URL: this server has no UI
        # and ends with the command, so a "View at" link to it would be dead (as for Prefect's own).
        settings = {"PREFECT_API_URL": url, "PREFECT_UI_URL": os.environ.get("PREFECT_UI_URL", "")}
        stack.callback(_restore_environ, {key: os.environ.get(key) for key in settings})
        os.environ.update(settings)
        if "prefect" in sys.modules:  # imported already: its settings need telling too
            from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

            updates = {PREFECT_API_URL: url, PREFECT_UI_URL: settings["PREFECT_UI_URL"]}
            stack.enter_context(temporary_settings(updates=updates))
        yield lambda: wait_answering(server, f"{url}/health", timeout_s)


def _restore_environ(values: dict[str, str | None]) -> None:
    for key, value in values.items():
        if value is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = value


def _send_prefect_queues() -> None:
    """Send the logs and events Prefect still holds (bounded), while its server still answers."""
    if "prefect" not in sys.modules:
        return
    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker

    for worker in (APILogWorker, EventsWorker):
        worker.drain_all(timeout=5)


@contextmanager
def owned_flow_runs() -> Iterator[None]:
    """Flow runs started within are tagged with this host and pid (their task runs and subflows too); the
    unfinished runs of this host whose process is gone (kill -9, the OOM killer) are marked Crashed first."""
    from prefect import tags

    host = socket.gethostname()
    mark_crashed_flow_runs(host)
    with tags(*owner_tags(host, os.getpid())):
        yield


def mark_crashed_flow_runs(host: str) -> list[str]:
    """Set Crashed the flow runs (and their unfinished task runs) left Pending or Running by a process of
    `host` that no longer exists; returns their ids."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterId,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
        TaskRunFilter,
        TaskRunFilterState,
        TaskRunFilterStateType,
    )
    from prefect.client.schemas.objects import StateType
    from prefect.states import Crashed

    unfinished = [StateType.PENDING, StateType.RUNNING]
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(
                state=FlowRunFilterState(type=FlowRunFilterStateType(any_=unfinished)),
                tags=FlowRunFilterTags(all_=[owner_tags(host, 0)[0]]),
            )
        )
        crashed = orphaned_runs(((r.id, r.tags) for r in runs), host, pid_alive)
        if not crashed:
            return []
        for run_id, pid in crashed:
            message = f"process {pid} on {host} ended mid-run"
            client.set_flow_run_state(run_id, Crashed(message=message), force=True)
        task_runs = client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id for run_id, _ in crashed])),
            task_run_filter=TaskRunFilter(
                state=TaskRunFilterState(type=TaskRunFilterStateType(any_=unfinished))
            ),
        )
        for task_run in task_runs:
            client.set_task_run_state(
                task_run.id, Crashed(message="its flow run's process ended"), force=True
            )
    ids = [str(run_id) for run_id, _ in crashed]
    event("crashed_flow_runs", runs=",".join(ids), task_runs=len(task_runs))
    return ids
