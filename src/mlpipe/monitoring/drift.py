"""Evidently drift reports: HTML for people, a dict for decisions."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from mlpipe.config import FeaturesCfg

# Fewer reference rows than this: no report. Evidently's two-sample tests (K-S, chi-square) on a few dozen
# rows flag noise or nothing, and a report would still read as a verdict.
MIN_REFERENCE_ROWS = 100


def batch_to_compare(data_dir: Path, taken: list[str], initial: list[str]) -> Path | None:
    """The data file a run's drift report is about: the newest batch the run took in (the last of `taken`,
    the data/ files of its accepted batches, in landing order), else the newest file of the initial data when
    this run recorded it; None when the run took in nothing (a params-only change, a rerun): such a run has
    no batch drift."""
    if taken:
        return data_dir / Path(taken[-1]).name
    return Path(max(initial)) if initial else None  # names carry the period: the last is the newest


@dataclass(frozen=True)
class ReferenceCut:
    """Which training rows a batch is compared with: with a time column, those older than the batch's first
    time (`cutoff`); without one, those that are not rows of the batch (matched on `match` columns). A time
    split trains on part of the newest batch: compared with itself, drift would be understated."""

    time_column: str | None
    cutoff: object | None
    match: tuple[str, ...]

    @property
    def scope(self) -> str:
        """The cut as a report names it: 'before 2013-03-01 00:00:00+00:00', 'without the batch's rows'."""
        return f"before {self.cutoff}" if self.time_column else "without the batch's rows"

    @property
    def key(self) -> str:
        """The cut in a directory name: a cached report is reused only for the same reference."""
        if self.time_column:
            text = self.cutoff.isoformat() if hasattr(self.cutoff, "isoformat") else str(self.cutoff)
            return "before-" + "".join(c if c.isalnum() or c in "+-." else "" for c in text)
        return "minus-batch-" + hashlib.sha256(",".join(self.match).encode()).hexdigest()[:8]

    def rows(self, training: pd.DataFrame, batch: pd.DataFrame) -> pd.DataFrame:
        """The rows of `training` this cut keeps (they must hold the time or `match` columns)."""
        if self.time_column:
            return training[training[self.time_column] < self.cutoff]
        from mlpipe.data.landing import row_hashes

        cols = list(self.match)
        # the split may have widened a column (int64 + double in data/): hash the batch in its types
        own = row_hashes(batch[cols].astype(training[cols].dtypes.to_dict()), cols)
        return training[~row_hashes(training, cols).isin(own.to_numpy()).to_numpy()]


def reference_cut(batch: pd.DataFrame, time_column: str | None, record_columns: list[str]) -> ReferenceCut:
    """The cut for `batch`: older than its first time when there is a time column, else minus its rows
    matched on the record columns (features, target)."""
    if time_column:
        return ReferenceCut(time_column, batch[time_column].min(), ())
    return ReferenceCut(None, None, tuple(record_columns))


def too_few_reference(
    rows: int, cut: ReferenceCut, batch: str, floor: int = MIN_REFERENCE_ROWS
) -> str | None:
    """Why no report is made (fewer than `floor` reference rows), or None when there are enough."""
    if rows >= floor:
        return None
    return f"no batch drift: {rows} training rows {cut.scope} for {batch} (rule: at least {floor})"


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


def describe_side(what: str, digest: str, times: pd.Series | None, rows: int, seen: int) -> dict:
    """One side of a comparison as the report names it: what it is, its content hash, its period and rows."""
    period = f"{times.min()} .. {times.max()}" if times is not None and len(times) else "unknown"
    return {"what": what, "hash": digest, "period": period, "rows": rows, "rows_seen": seen}


def context_header(title: str, reference: dict, current: dict) -> str:
    """The HTML block that opens a report: its title, then what it compares with what (pure; escaped)."""
    from html import escape

    def row(label: str, side: dict) -> str:
        cells = [side["what"], side["hash"], side["period"], f"{side['rows']} ({side['rows_seen']} seen)"]
        return f"<tr><th>{label}</th>" + "".join(f"<td>{escape(str(c))}</td>" for c in cells) + "</tr>"

    return (
        '<header style="font-family:sans-serif;margin:16px 24px">'
        f"<h1>{escape(title)}</h1>"
        '<table style="border-collapse:collapse" cellpadding="4">'
        "<tr><th></th><th>data</th><th>hash</th><th>period</th><th>rows (seen by Evidently)</th></tr>"
        f"{row('reference', reference)}{row('current', current)}</table></header>"
    )


def titled(page: str, title: str, header: str) -> str:
    """Evidently's page with `title` as its <title> and `header` opening its body (Evidently's save_html
    renders neither the snapshot's name nor its metadata)."""
    from html import escape

    page = page.replace("<head>", f"<head><title>{escape(title)}</title>", 1)
    return page.replace("<body>", f"<body>{header}", 1)


def save_drift(
    snapshot, out_dir: Path, rows: dict | None = None, context: dict | None = None, note: str | None = None
) -> tuple[Path, Path, dict]:
    """Write drift.html (self-contained, no CDN) and drift.json; return their paths and the summary
    (with `rows`, when given: how many rows each side had and how many Evidently saw). `context`
    ({title, reference, current}, sides from describe_side) titles the page and says what it compares;
    `note`, one line of it for a run's summary."""
    import json

    out_dir.mkdir(parents=True, exist_ok=True)
    html, js = out_dir / "drift.html", out_dir / "drift.json"
    snapshot.save_html(str(html))  # Evidently writes nothing when given a Path object
    if context:
        header = context_header(context["title"], context["reference"], context["current"])
        html.write_text(titled(html.read_text(encoding="utf-8"), context["title"], header), encoding="utf-8")
    raw = snapshot.dict()
    summary = (
        drift_summary(raw)
        | ({"rows": rows} if rows else {})
        | ({"context": context} if context else {})
        | ({"note": note} if note else {})
    )
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
