"""The monitoring flow: the champion's own rows of the prediction log's newest window against its training
data (each other version's rows described beside them); Evidently reports (HTML + JSON) on an MLflow
monitoring run linked to the champion's run and as a Prefect artifact; when drift or a performance drop says
retrain, lands what is new to train on and retrains on it (nothing new: no retrain, and it says so); raises an
alert state (`Retire`) when live performance falls below the floor. The engine behind `mlpipe monitor`."""

from __future__ import annotations

import json
from dataclasses import replace

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from mlpipe.flows.common import setup
from mlpipe.monitoring.new_data import NewData
from mlpipe.monitoring.summary import MonitorResult, RetrainRun, summary_markdown
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.monitor_runs import record_monitoring
from mlpipe.runtime.logs import event


@task(name="monitor_window", timeout_seconds=900)
def check(root: str, tracking_uri: str, log_url: str) -> MonitorResult:
    """The champion judged on its own logged rows, the other versions described (monitoring.judge), recorded
    as an MLflow monitoring run."""
    from mlpipe.monitoring.judge import judge_log, load_champion

    paths, params = setup(root)
    client = mlflow_client(tracking_uri)
    champion = load_champion(client, params.model.name, params.train.trusted_types)
    window, files = judge_log(paths, params, champion, log_url)
    result = MonitorResult(window, record_monitoring(client, champion.run, window, files))
    event(
        "monitor",
        rows=window["rows_in_window"],
        champion_rows=window["champion_rows"],
        drift_share=(window["input_drift"] or {}).get("drift_share"),
        retrain=result.retrain,
        retire=result.retire,
        reasons="; ".join(result.reasons) or "none",
    )
    return result


@task(name="new_data", timeout_seconds=1800)
def new_data(root: str, log_url: str) -> NewData:
    """What a retrain verdict has to train on, landed (monitoring.new_data)."""
    from mlpipe.monitoring.new_data import land_new_data

    paths, params = setup(root)
    return land_new_data(paths, params, log_url)


@flow(name="monitor", log_prints=True)
def monitor(
    root: str = ".", tracking_uri: str | None = None, log_url: str | None = None, trigger: bool = True
):
    """One monitoring pass; retrains when the verdict says so (and `trigger`), alerts on retirement."""
    from mlpipe.serving.prediction_log import default_log_url

    paths, _ = setup(root)
    uri = tracking_uri or paths.tracking_uri
    url = log_url or default_log_url(paths.root)
    result = check(str(paths.root), uri, url)
    if result.retrain and trigger:
        found = new_data(str(paths.root), url)
        result = replace(result, new_data=found, new_data_line=found.line("; ".join(result.reasons)))
        event("monitor_new_data", line=result.new_data_line)
    create_markdown_artifact(
        summary_markdown(result), key="monitor-summary", description="What the monitor saw and decided"
    )
    if result.new_data is not None and result.new_data.batches:  # with nothing new it would train nothing
        from mlpipe.flows.retrain import retrain

        event("monitor_triggers_retrain", reasons="; ".join(result.reasons))
        state = retrain(root=str(paths.root), tracking_uri=uri, return_state=True)
        summary = (
            state.result(raise_on_failure=False).as_dict() if not state.is_failed() else str(state.message)
        )
        result = replace(result, retrain_run=RetrainRun(state.name, summary))
    if result.retire:  # its data the result as a JSON-safe dict (MonitorResult.from_dict reads it back)
        return Failed(
            name="Retire",
            message="; ".join(result.reasons),
            data=json.loads(json.dumps(result.as_dict(), default=str)),
        )
    return result
