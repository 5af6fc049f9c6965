"""Before `mlpipe run` starts a Prefect flow: would the flow do anything at all?

It would not when no batch waits in the landing zone, the git tree is clean, DVC reports `data/` and
every stage up to date (DVC's own status), and MLflow already holds this exact state's run with its
drift report and a registered version. Then the answer is that run, found in a few seconds instead of
the ~10 s a flow needs just to start. Any doubt (or a busy project) leaves the decision to the flow."""

from __future__ import annotations

import json

from mlpipe.config import Params, ProjectPaths
from mlpipe.lineage import dvc_file_md5, git_commit, git_dirty
from mlpipe.lock import LockBusy, project_lock
from mlpipe.logs import event
from mlpipe.recorded import find_recorded_run

VERDICT = "nothing to train (no new data, no code or param change; answered before starting the flow)"


def _landed(paths: ProjectPaths, params: Params) -> bool:
    from mlpipe.landing import landed_batches

    return bool(landed_batches(paths.root / params.retrain.landing_dir))


def _dvc_up_to_date(paths: ProjectPaths) -> bool:
    from dvc.repo import Repo

    with Repo(str(paths.root)) as repo:
        return not repo.status()


def recorded_state(paths: ProjectPaths, params: Params, tracking_uri: str) -> dict | None:
    """The run summary of the recorded state when a flow run would change nothing, else None."""
    try:
        with project_lock(paths.lock_file, timeout_s=0):
            return _recorded_state(paths, params, tracking_uri)
    except LockBusy:
        return None  # another run is busy: the flow will wait for it


def _recorded_state(paths: ProjectPaths, params: Params, tracking_uri: str) -> dict | None:
    if _landed(paths, params) or not paths.data.is_dir() or not paths.manifest.exists():
        return None
    if git_dirty(paths.root) or not _dvc_up_to_date(paths):
        return None
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=tracking_uri)
    exp = client.get_experiment_by_name(params.model.experiment)
    if exp is None:
        return None
    manifest = json.loads(paths.manifest.read_text())
    data_md5 = dvc_file_md5(paths.root / "data.dvc")
    commit = git_commit(paths.root) or ""
    run = find_recorded_run(client, exp.experiment_id, {
        "mlpipe.model_sha256": manifest["model_sha256"], "mlpipe.git_commit": commit, "mlpipe.data_md5": data_md5 or "",
        "mlpipe.params_sha256": manifest["params_sha256"], "mlpipe.git_dirty": "false"})
    if run is None or "mlpipe.drift_share" not in run.data.tags:
        return None  # not recorded, or a run cut short before its drift report: the flow completes it
    versions = client.search_model_versions(f"name = '{params.model.name}' and run_id = '{run.info.run_id}'")
    if not versions or not versions[0].tags.get("mlpipe.gate.decision"):
        return None  # not registered, or never judged by the gate: the flow finishes the job
    version = str(versions[0].version)
    aliases = sorted(a for a, v in client.get_registered_model(params.model.name).aliases.items() if str(v) == version)
    metrics = json.loads(paths.metrics.read_text())
    event("preflight_nothing_to_do", run_id=run.info.run_id, version=version)
    return {
        "verdict": VERDICT, "accepted": [], "quarantined": [], "quarantine_reports": [], "rows_accepted": 0,
        "data_before": data_md5, "data_after": data_md5, "commit": commit, "git_dirty": False,
        "stages_run": [], "trained": False, "run_id": run.info.run_id, "already_recorded": True,
        "model_name": params.model.name, "model_version": version, "aliases": aliases,
        "model_sha256": manifest["model_sha256"], "metrics": metrics,
        "drift_share": run.data.metrics.get("drift_share"), "tracking_uri": tracking_uri,
        "gate_decision": versions[0].tags.get("mlpipe.gate.decision"),
        "gate_failed": [f for f in versions[0].tags.get("mlpipe.gate.failed", "").split(",") if f],
        "champion": next((v for a, v in client.get_registered_model(params.model.name).aliases.items() if a == "champion"), None),
    }
