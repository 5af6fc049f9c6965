"""The monitoring flow: the champion's own rows of the prediction log's newest window against its training
data (each other version's rows described beside them); Evidently reports (HTML + JSON) on an MLflow
monitoring run linked to the champion's run and as a Prefect artifact; when drift or a performance drop says
retrain, lands what is new to train on and retrains on it (nothing new: no retrain, and it says so); raises an
alert state (`Retire`) when live performance falls below the floor. The engine behind `mlpipe monitor`."""

from __future__ import annotations

import json

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from mlpipe.flows.common import setup
from mlpipe.monitoring.summary import summary_markdown
from mlpipe.registry.client import mlflow_client
from mlpipe.registry.monitor_runs import record_monitoring
from mlpipe.runtime.logs import event


@task(name="monitor_window", timeout_seconds=900)
def check(root: str, tracking_uri: str, log_url: str) -> dict:
    """The champion judged on its own logged rows, the other versions described (monitoring.judge), recorded
    as an MLflow monitoring run."""
    from mlpipe.monitoring.judge import judge_log, load_champion

    paths, params = setup(root)
    client = mlflow_client(tracking_uri)
    champion = load_champion(client, params.model.name, params.train.trusted_types)
    result, files = judge_log(paths, params, champion, log_url)
    result["monitoring_run_id"] = record_monitoring(client, champion.run, result, files)
    event(
        "monitor",
        rows=result["rows_in_window"],
        champion_rows=result["champion_rows"],
        drift_share=(result["input_drift"] or {}).get("drift_share"),
        retrain=result["retrain"],
        retire=result["retire"],
        reasons="; ".join(result["reasons"]) or "none",
    )
    return result


@task(name="new_data", timeout_seconds=1800)
def new_data(root: str, log_url: str, wanted: str) -> dict:
    """What a retrain verdict (`wanted`: its reasons) has to train on, landed (monitoring.new_data)."""
    from mlpipe.monitoring.new_data import land_new_data

    paths, params = setup(root)
    found = land_new_data(paths, params, log_url)
    return found.as_dict() | {"line": found.line(wanted)}


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
    if result["retrain"] and trigger:
        result["new_data"] = new_data(str(paths.root), url, "; ".join(result["reasons"]))
        event("monitor_new_data", line=result["new_data"]["line"])
    create_markdown_artifact(
        summary_markdown(result), key="monitor-summary", description="What the monitor saw and decided"
    )
    if result.get("new_data", {}).get("batches"):  # a retrain with nothing new would train nothing
        from mlpipe.flows.retrain import retrain

        event("monitor_triggers_retrain", reasons="; ".join(result["reasons"]))
        state = retrain(root=str(paths.root), tracking_uri=uri, return_state=True)
        result["retrain_run"] = {
            "state": state.name,
            "summary": state.result(raise_on_failure=False).as_dict()
            if not state.is_failed()
            else str(state.message),
        }
    if result["retire"]:
        return Failed(
            name="Retire",
            message="; ".join(result["reasons"]),
            data=json.loads(json.dumps(result, default=str)),
        )
    return result
