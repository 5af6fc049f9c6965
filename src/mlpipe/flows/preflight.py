"""Before `mlpipe run` starts a Prefect flow: would the flow do anything at all?

It would not when no batch waits in the landing zone, the git tree is clean and at the commit the last
recorded run ended on, DVC reports `data/` and every stage up to date (DVC's own status), and that run's
model is the one in the workspace. The answer is then that run's summary, kept by the flow when it ended
(`.mlpipe/last_run.json`, `remember_run`): files alone, no MLflow or Prefect import, ~1 s instead of the
~10 s a flow needs just to start. Any doubt (no record, another tracking store, a busy project, an alias
moved by hand since) leaves the decision to the flow; `mlpipe run --flow` always asks the flow."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

from mlpipe.config import Params, ProjectPaths
from mlpipe.data.zone import landed_batches
from mlpipe.errors import LockBusy
from mlpipe.flows.common import NO_BATCH_DRIFT, RunSummary
from mlpipe.registry.client import sqlite_store_missing
from mlpipe.runtime.git import git_commit, git_dirty
from mlpipe.runtime.lock import project_lock
from mlpipe.runtime.logs import event

VERDICT = "nothing to train (no new data, no code or param change; answered before starting the flow)"
RECORD_VERSION = 2


def remember_run(paths: ProjectPaths, summary: RunSummary) -> None:
    """Keep the summary of a recorded, registered and judged run at the commit it ended on: the no-op
    answer of the next `mlpipe run`. An experiment or a run from a dirty tree is never remembered."""
    if summary.git_dirty or not summary.gate_decision or summary.model_version == "unregistered":
        forget_run(paths)
        return
    record = {
        "record_version": RECORD_VERSION,
        "commit": summary.commit,
        "store": _store_key(paths, summary.tracking_uri),
        "written_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "summary": summary.as_dict(),
    }
    paths.last_run.parent.mkdir(parents=True, exist_ok=True)
    tmp = paths.last_run.with_suffix(".tmp")
    tmp.write_text(json.dumps(record, indent=1, default=str))
    tmp.replace(paths.last_run)


def forget_run(paths: ProjectPaths) -> None:
    """Drop the no-op answer: the registry moved (promote, rollback), so the next run asks the flow."""
    paths.last_run.unlink(missing_ok=True)


def recorded_state(paths: ProjectPaths, params: Params, tracking_uri: str) -> RunSummary | None:
    """The run summary of the recorded state when a flow run would change nothing, else None."""
    try:
        with project_lock(paths.lock_file, timeout_s=0):
            return _recorded_state(paths, params, tracking_uri)
    except LockBusy:
        return None  # another run is busy: the flow will wait for it


def _read_record(paths: ProjectPaths) -> dict | None:
    try:
        record = json.loads(paths.last_run.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(record, dict) or record.get("record_version") != RECORD_VERSION:
        return None
    try:
        RunSummary(**record["summary"])
    except (TypeError, KeyError):  # fields added or dropped since it was written
        return None
    return record


def _store_key(paths: ProjectPaths, tracking_uri: str) -> str:
    """'project' for the project's own store (a copied or moved project keeps its answer), else the URI."""
    return "project" if tracking_uri == paths.tracking_uri else tracking_uri


def _dvc_up_to_date(paths: ProjectPaths) -> bool:
    from dvc.repo import Repo

    with Repo(str(paths.root)) as repo:
        return not repo.status()


def _workspace_model_sha256(paths: ProjectPaths) -> str | None:
    try:
        return json.loads(paths.manifest.read_text())["model_sha256"]
    except (OSError, ValueError, KeyError):
        return None


def _recorded_state(paths: ProjectPaths, params: Params, tracking_uri: str) -> RunSummary | None:
    record = _read_record(paths)
    if (
        record is None
        or record.get("store") != _store_key(paths, tracking_uri)
        or sqlite_store_missing(tracking_uri)  # deleted since: its run is gone
    ):
        return None
    recorded = replace(RunSummary(**record["summary"]), tracking_uri=tracking_uri)
    if (
        landed_batches(paths.root / params.retrain.landing_dir)
        or not paths.data.is_dir()
        or _workspace_model_sha256(paths) != recorded.model_sha256
    ):
        return None
    if git_dirty(paths.root) or git_commit(paths.root) != record["commit"]:
        return None
    if not _dvc_up_to_date(paths):
        return None
    event("preflight_nothing_to_do", run_id=recorded.run_id, version=recorded.model_version)
    return replace(
        recorded,
        verdict=VERDICT,
        accepted=[],
        quarantined=[],
        quarantine_reports=[],
        rows_accepted=0,
        drift_share=None,
        drift_note=NO_BATCH_DRIFT,
        data_before=recorded.data_after,
        stages_run=[],
        trained=False,
        already_recorded=True,
    )
