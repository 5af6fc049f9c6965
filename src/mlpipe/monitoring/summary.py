"""What a monitoring pass says to a person (pure): its verdict in a word, the Prefect summary in markdown
and the lines `mlpipe monitor` prints, all from the one result the flow returns."""

from __future__ import annotations


def verdict_word(r: dict) -> str:
    """no verdict yet | RETIRE | retrain | retrain wanted, nothing new to train on | healthy."""
    if not r["judged"]:
        return "no verdict yet"
    if r["retire"]:
        return "RETIRE"
    if r["retrain"]:
        found = r.get("new_data")
        return "retrain wanted, nothing new to train on" if found and not found["batches"] else "retrain"
    return "healthy"


def summary_markdown(r: dict) -> str:
    """The flow's `monitor-summary` artifact."""
    lines = [
        f"# Monitor: {verdict_word(r)}",
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


def summary_lines(r: dict) -> list[str]:
    """What `mlpipe monitor` prints."""
    lines = [
        f"mlpipe monitor: {verdict_word(r)}; {r['rows_in_window']} rows in window, input drift share "
        f"{(r['input_drift'] or {}).get('drift_share')}, live {r['metric']} "
        f"{(r['live_metrics'] or {}).get(r['metric'])} on {r['labels']} labels",
        f"  {r['champion']}",
    ]
    lines += [f"  reason: {reason}" for reason in r["reasons"]]
    lines += [f"  {line}" for line in r["version_lines"]]
    lines += [f"  {r['new_data']['line']}"] if r.get("new_data") else []
    lines += [f"  retrain flow: {r['retrain_run']['state']}"] if "retrain_run" in r else []
    return lines
