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

from flows.common import setup
from mlpipe.registry import tags as tag
from mlpipe.registry.client import mlflow_client
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
    result["monitoring_run_id"] = _log_monitoring_run(client, champion.run, result, files)
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


def _log_monitoring_run(client, champion_run, result: dict, files: list[str]) -> str:
    run = client.create_run(
        champion_run.info.experiment_id,
        run_name=f"monitor-{champion_run.info.run_id[:8]}",
        tags={
            tag.KIND: "monitoring",
            tag.MONITORS: champion_run.info.run_id,
            tag.MONITOR_RETRAIN: str(result["retrain"]).lower(),
            tag.MONITOR_RETIRE: str(result["retire"]).lower(),
            tag.MONITOR_REASONS: "; ".join(result["reasons"])[:5000],
        },
    )
    rid = run.info.run_id
    client.log_metric(rid, "rows_in_window", result["rows_in_window"])
    client.log_metric(rid, "champion_rows", result["champion_rows"])
    for version, figures in result["versions"].items():  # the other versions' own rows: information
        client.log_metric(rid, f"v{version}_rows", figures["rows"])
        if figures["input_drift_share"] is not None:
            client.log_metric(rid, f"v{version}_input_drift_share", figures["input_drift_share"])
        for name, value in (figures["live_metrics"] or {}).items():
            client.log_metric(rid, f"v{version}_live_{name}", float(value))
    if result["input_drift"]:
        client.log_metric(rid, "input_drift_share", result["input_drift"]["drift_share"])
        client.log_metric(rid, "prediction_drifted", float(bool(result["prediction_drift"]["drift_share"])))
    for name, value in (result["live_metrics"] or {}).items():
        client.log_metric(rid, f"live_{name}", float(value))
    for f in files:
        client.log_artifact(rid, f, "monitor")
    client.log_dict(rid, result, "monitor/decision.json")
    client.set_terminated(rid, "FINISHED")
    return rid


def _verdict(r: dict) -> str:
    if not r["judged"]:
        return "no verdict yet"
    return "RETIRE" if r["retire"] else ("retrain" if r["retrain"] else "healthy")


def _markdown(r: dict) -> str:
    lines = [
        f"# Monitor: {_verdict(r)}",
        "",
        f"- champion run: {r['champion_run_id']}",
        f"- {r['champion']}",
        f"- rows in window: {r['rows_in_window']} (the champion's checked {r['rows_checked']}, read in "
        f"{r['read_s']} s)",
        f"- input drift share: {(r['input_drift'] or {}).get('drift_share')}",
        f"- prediction drifted: {bool((r['prediction_drift'] or {}).get('drift_share'))}",
        f"- live {r['metric']}: {(r['live_metrics'] or {}).get(r['metric'])} on {r['labels']} labels "
        f"(training {r['training_metric']})",
        f"- MLflow monitoring run: {r['monitoring_run_id']}",
        "",
    ]
    lines += [f"- reason: {x}" for x in r["reasons"]] or ["- no reason to act"]
    lines += [f"- {x}" for x in r["version_lines"]]
    lines += [f"- {r['new_data']['line']}"] if r.get("new_data") else []
    return "\n".join(lines) + "\n"


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
        _markdown(result), key="monitor-summary", description="What the monitor saw and decided"
    )
    if result.get("new_data", {}).get("batches"):  # a retrain with nothing new would train nothing
        from flows.retrain import retrain

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
