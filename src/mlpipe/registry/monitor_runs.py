"""The monitoring pass as MLflow records it: its own run in the champion's experiment, linked to the
champion's run, with the window's figures as metrics, the Evidently reports and the decision as artifacts,
and the verdict as tags. What the figures say is decided by mlpipe.monitoring; this module only writes it."""

from __future__ import annotations

from mlpipe.registry import tags as tag


def record_monitoring(client, champion_run, result: dict, files: list[str]) -> str:
    """The monitoring run (see the module); returns its id."""
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
