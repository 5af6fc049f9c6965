"""Evidently drift reports: HTML for people, a dict for decisions."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from mlpipe.config import FeaturesCfg


def drift_report(reference: pd.DataFrame, current: pd.DataFrame, features: FeaturesCfg):
    """Run Evidently's DataDriftPreset on the feature columns; return the snapshot."""
    from evidently import DataDefinition, Dataset, Report
    from evidently.presets import DataDriftPreset

    defn = DataDefinition(
        numerical_columns=list(features.numerical), categorical_columns=list(features.categorical)
    )
    cols = features.columns
    ref = Dataset.from_pandas(reference[cols], data_definition=defn)
    cur = Dataset.from_pandas(current[cols], data_definition=defn)
    return Report([DataDriftPreset()]).run(current_data=cur, reference_data=ref)


def stride_sample(df: pd.DataFrame, max_rows: int) -> pd.DataFrame:
    """At most `max_rows` rows: every k-th row, in order. No randomness, so the same data gives the same
    sample, and a time-ordered frame is covered from end to end."""
    if len(df) <= max_rows:
        return df
    return df.iloc[:: -(-len(df) // max_rows)]


def drift_summary(snapshot_dict: dict) -> dict:
    """{drifted_columns, drift_share, columns: {name: score}} from a snapshot's dict(); a column's score
    is what Evidently's chosen method gives (a p-value on small samples, a distance on large ones)."""
    out: dict = {"drifted_columns": None, "drift_share": None, "columns": {}}
    for metric in snapshot_dict.get("metrics", []):
        name = metric.get("metric_name", "")
        value = metric.get("value")
        if name.startswith("DriftedColumnsCount"):
            out["drifted_columns"] = int(value["count"])
            out["drift_share"] = round(float(value["share"]), 6)
        elif name.startswith("ValueDrift"):
            column = metric.get("config", {}).get("column") or name.split("column=")[-1].split(",")[0].rstrip(
                ")"
            )
            out["columns"][column] = round(float(value), 6)
    return out


def save_drift(snapshot, out_dir: Path, rows: dict | None = None) -> tuple[Path, Path, dict]:
    """Write drift.html (self-contained, no CDN) and drift.json; return their paths and the summary
    (with `rows`, when given: how many rows each side had and how many Evidently saw)."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    html, js = out_dir / "drift.html", out_dir / "drift.json"
    snapshot.save_html(str(html))  # Evidently writes nothing when given a Path object
    raw = snapshot.dict()
    summary = drift_summary(raw) | ({"rows": rows} if rows else {})
    tmp = js.with_suffix(".json.tmp")  # written last and renamed: a complete json means a complete report
    tmp.write_text(
        json.dumps({"summary": summary, "evidently": raw}, indent=1, default=str), encoding="utf-8"
    )
    tmp.replace(js)
    return html, js, summary


def read_drift(out_dir: Path) -> tuple[Path, Path, dict] | None:
    """A report save_drift wrote earlier into `out_dir`, or None when it is not complete."""
    import json

    html, js = out_dir / "drift.html", out_dir / "drift.json"
    if not (html.exists() and js.exists()):
        return None
    try:
        return html, js, json.loads(js.read_text(encoding="utf-8"))["summary"]
    except (ValueError, KeyError):
        return None
