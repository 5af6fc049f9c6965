"""Before `mlpipe run` starts a Prefect flow: would the flow do anything at all?

It would not when no batch waits in the landing zone, the git tree is clean, DVC reports `data/` and
every stage up to date (DVC's own status), and MLflow already holds this exact state's run with its
drift report and a registered version. Then the answer is that run, found in a few seconds instead of
the ~10 s a flow needs just to start. Any doubt (or a busy project) leaves the decision to the flow.
No Prefect import here: this is the path that avoids starting it."""

from __future__ import annotations

import json

from flows.common import RunSummary
from mlpipe.config import Params, ProjectPaths
from mlpipe.errors import LockBusy
from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import CHAMPION, alias_version, aliases_of
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.refs import versions_of_run
from mlpipe.runtime.git import git_commit, git_dirty
from mlpipe.runtime.lock import project_lock
from mlpipe.runtime.lockfiles import dvc_file_md5
from mlpipe.runtime.logs import event

VERDICT = "nothing to train (no new data, no code or param change; answered before starting the flow)"


def _dvc_up_to_date(paths: ProjectPaths) -> bool:
    from dvc.repo import Repo

    with Repo(str(paths.root)) as repo:
        return not repo.status()


def recorded_state(paths: ProjectPaths, params: Params, tracking_uri: str) -> RunSummary | None:
    """The run summary of the recorded state when a flow run would change nothing, else None."""
    try:
        with project_lock(paths.lock_file, timeout_s=0):
            return _recorded_state(paths, params, tracking_uri)
    except LockBusy:
        return None  # another run is busy: the flow will wait for it


def _recorded_state(paths: ProjectPaths, params: Params, tracking_uri: str) -> RunSummary | None:
    from mlpipe.data.landing import (
        landed_batches,
    )  # here: it imports pandera, which the no-op path may not need

    if (
        landed_batches(paths.root / params.retrain.landing_dir)
        or not paths.data.is_dir()
        or not paths.manifest.exists()
    ):
        return None
    if git_dirty(paths.root) or not _dvc_up_to_date(paths):
        return None
    from mlpipe.registry.tracking import find_recorded_run

    client = mlflow_client(tracking_uri)
    exp = client.get_experiment_by_name(params.model.experiment)
    if exp is None:
        return None
    manifest = json.loads(paths.manifest.read_text())
    data_md5 = dvc_file_md5(paths.root / "data.dvc")
    commit = git_commit(paths.root) or ""
    run = find_recorded_run(
        client,
        exp.experiment_id,
        {
            tag.MODEL_SHA256: manifest["model_sha256"],
            tag.GIT_COMMIT: commit,
            tag.DATA_MD5: data_md5 or "",
            tag.PARAMS_SHA256: manifest["params_sha256"],
            tag.GIT_DIRTY: "false",
        },
    )
    if run is None or tag.DRIFT_SHARE not in run.data.tags:
        return None  # not recorded, or a run cut short before its drift report: the flow completes it
    versions = versions_of_run(client, run.info.run_id, params.model.name)
    if not versions or not versions[0].tags.get(tag.GATE_DECISION):
        return None  # not registered, or never judged by the gate: the flow finishes the job
    version = str(versions[0].version)
    event("preflight_nothing_to_do", run_id=run.info.run_id, version=version)
    return RunSummary(
        verdict=VERDICT,
        accepted=[],
        quarantined=[],
        quarantine_reports=[],
        rows_accepted=0,
        data_before=data_md5,
        data_after=data_md5,
        commit=commit,
        git_dirty=False,
        stages_run=[],
        trained=False,
        run_id=run.info.run_id,
        already_recorded=True,
        model_name=params.model.name,
        model_version=version,
        aliases=aliases_of(client, params.model.name, version),
        model_sha256=manifest["model_sha256"],
        metrics=json.loads(paths.metrics.read_text()),
        drift_share=run.data.metrics.get("drift_share"),
        tracking_uri=tracking_uri,
        gate_decision=versions[0].tags.get(tag.GATE_DECISION),
        gate_failed=[f for f in versions[0].tags.get(tag.GATE_FAILED, "").split(",") if f],
        champion=alias_version(client, params.model.name, CHAMPION),
    )
