"""The monitoring flow: the prediction log's newest window against the champion's training data;
Evidently reports (HTML + JSON) on an MLflow monitoring run linked to the champion's run and as a
Prefect artifact; retrains when drift or a performance drop says so, and raises an alert state
(`Retire`) when live performance falls below the floor. The engine behind `mlpipe monitor`."""

from __future__ import annotations

import json
import time
from pathlib import Path

from prefect import flow, task
from prefect.artifacts import create_markdown_artifact
from prefect.states import Failed

from flows.common import setup
from mlpipe.config import ProjectPaths
from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import CHAMPION
from mlpipe.registry.client import mlflow_client
from mlpipe.runtime.logs import event


def _training_split(paths: ProjectPaths, run) -> Path:
    """The champion's own train split from the DVC cache by its recorded md5; the project's as a fallback."""
    from mlpipe.registry.reproduce import cached_output

    return cached_output(paths.root, tag.read(run.data.tags, tag.TRAINSET_MD5), paths.train_split)


@task(name="monitor_window", timeout_seconds=900)
def check(root: str, tracking_uri: str, log_url: str) -> dict:
    from mlpipe.data.frames import read_frame
    from mlpipe.model.outputs import classes_of, task_of
    from mlpipe.monitoring import monitor as mon
    from mlpipe.monitoring.drift import describe_side, save_drift
    from mlpipe.registry.models import load_registered

    paths, params = setup(root)
    cfg = params.monitor
    client = mlflow_client(tracking_uri)
    loaded, run_id = load_registered(client, f"models:/{params.model.name}@{CHAMPION}")
    run = client.get_run(run_id)
    t0 = time.perf_counter()
    window, rows = mon.read_window(log_url, cfg.window_rows, cfg.sample_rows)
    read_s = time.perf_counter() - t0
    result = {
        "champion_run_id": run_id,
        "rows_in_window": rows,
        "rows_checked": len(window),
        "read_s": round(read_s, 3),
    }
    inputs = prediction = live = None
    files: list[str] = []
    trained = dict(run.data.metrics)
    if rows >= cfg.min_rows:
        train = read_frame(_training_split(paths, run))
        reference = mon.reference_sample(
            train, loaded.model, params.features, cfg.reference_rows, params.seed + 3
        )
        current = mon.coerce_like(window, reference, params.features)
        t1 = time.perf_counter()
        inputs, prediction, snapshot = mon.drift_summaries(reference, current, params.features)
        result["evidently_s"] = round(time.perf_counter() - t1, 3)
        train_md5 = tag.read(run.data.tags, tag.TRAINSET_MD5, "")
        time_col = params.dataset.time_column
        context = {
            "title": f"Input drift: prediction log vs training data of {params.model.name} (champion)",
            "reference": describe_side(
                f"training split of run {run_id}",
                f"DVC md5 {train_md5 or 'unknown'}",
                train[time_col] if time_col in train.columns else None,
                len(train),
                len(reference),
            ),
            "current": describe_side(
                f"prediction log: newest {cfg.window_rows} rows",
                "rows, not a file",
                window.get(mon.LOGGED_AT),
                rows,
                len(current),
            ),
        }
        html, js, _ = save_drift(
            snapshot, paths.artifacts / "monitor" / time.strftime("%Y%m%dT%H%M%S"), context=context
        )
        files = [str(html), str(js)]
        task, classes = task_of(loaded.model), classes_of(loaded.model)
        live = mon.live_performance(window, params.evaluate.threshold, cfg.min_labels, task, classes)
        verdicts = inputs["verdicts"] | prediction["verdicts"]
        sampled = len(window) < rows or len(reference) < len(train)
        if sampled and mon.decision_at_stake(
            cfg, rows, verdicts, params.features, live, trained, params.monitor_metric
        ):
            # A sampled score near its threshold could flip the decision: Evidently on every row decides.
            whole = mon.reference_sample(train, loaded.model, params.features, len(train), params.seed + 3)
            verdicts = mon.confirm_borderline(log_url, cfg.window_rows, whole, verdicts, params.features)
            inputs, prediction = mon.summaries_from_verdicts(verdicts, params.features)
            result["confirmed_on_every_row"] = sorted(c for c, v in verdicts.items() if v.get("confirmed"))
    decision = mon.monitor_verdict(cfg, rows, inputs, prediction, live, trained, params.monitor_metric)
    result |= {
        "input_drift": inputs,
        "prediction_drift": prediction,
        "live_metrics": live,
        "labels": int(window["label"].notna().sum()) if len(window) else 0,
        "training_metric": trained.get(params.monitor_metric),
        "metric": params.monitor_metric,
        **decision,
    }
    result["monitoring_run_id"] = _log_monitoring_run(client, run, result, files)
    event(
        "monitor",
        rows=rows,
        drift_share=(inputs or {}).get("drift_share"),
        retrain=decision["retrain"],
        retire=decision["retire"],
        reasons="; ".join(decision["reasons"]) or "none",
    )
    return result


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


def _markdown(r: dict) -> str:
    lines = [
        f"# Monitor: {'RETIRE' if r['retire'] else ('retrain' if r['retrain'] else 'healthy')}",
        "",
        f"- champion run: {r['champion_run_id']}",
        f"- rows in window: {r['rows_in_window']} (checked {r['rows_checked']}, read in {r['read_s']} s)",
        f"- input drift share: {(r['input_drift'] or {}).get('drift_share')}",
        f"- prediction drifted: {bool((r['prediction_drift'] or {}).get('drift_share'))}",
        f"- live {r['metric']}: {(r['live_metrics'] or {}).get(r['metric'])} on {r['labels']} labels "
        f"(training {r['training_metric']})",
        f"- MLflow monitoring run: {r['monitoring_run_id']}",
        "",
    ]
    lines += [f"- reason: {x}" for x in r["reasons"]] or ["- no reason to act"]
    return "\n".join(lines) + "\n"


@flow(name="monitor", log_prints=True)
def monitor(
    root: str = ".", tracking_uri: str | None = None, log_url: str | None = None, trigger: bool = True
):
    """One monitoring pass; retrains when the verdict says so (and `trigger`), alerts on retirement."""
    from mlpipe.serving.prediction_log import default_log_url

    paths, _ = setup(root)
    uri = tracking_uri or paths.tracking_uri
    result = check(str(paths.root), uri, log_url or default_log_url(paths.root))
    create_markdown_artifact(
        _markdown(result), key="monitor-summary", description="What the monitor saw and decided"
    )
    if result["retrain"] and trigger:
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
