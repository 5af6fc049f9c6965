"""The prediction log by model version: the log records which version answered each row, so each version is
judged on its own rows. The champion's verdict uses its rows alone and says how many it had; the other
versions in the window are described (live metrics, input drift), as information, never as its verdict."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from mlpipe.config import FeaturesCfg, MonitorCfg
from mlpipe.monitoring.monitor import read_window, version_order, window_versions


@dataclass(frozen=True)
class VersionWindow:
    """One model version's rows in the monitor's window: how many (`rows`) and the sample read of them."""

    version: str
    rows: int
    frame: pd.DataFrame

    @property
    def checked(self) -> int:
        return len(self.frame)

    @property
    def labelled(self) -> int:
        """Rows of the sample with a feedback label (all of them when nothing was sampled out)."""
        return int(self.frame["label"].notna().sum()) if len(self.frame) else 0


def read_versions(url: str, cfg: MonitorCfg, champion: str) -> tuple[dict[str, VersionWindow], int]:
    """({version: its rows in the window}, rows in the window): each version's rows sampled on their own
    (read_window filtered by version in the database, up to monitor.sample_rows each); the champion always,
    even with no row of its own."""
    found, in_window = window_versions(url, cfg.window_rows, cfg.sample_rows)
    out = {}
    for version in sorted({*found, champion}, key=version_order):
        frame, rows = read_window(url, cfg.window_rows, cfg.sample_rows, version)
        out[version] = VersionWindow(version, rows, frame)
    return out, in_window


def rows_said(rows: int, checked: int, labelled: int) -> str:
    """`412 rows, 130 labelled`; when sampled `412,000 rows (20,000 checked, 3,100 of them labelled)`."""
    if checked < rows:
        return f"{rows:,} rows ({checked:,} checked, {labelled:,} of them labelled)"
    return f"{rows:,} rows, {labelled:,} labelled"


def versions_line(champion: str, windows: dict[str, VersionWindow]) -> str:
    """What the champion's verdict rests on: `champion v3: 412 logged rows of its own, 130 labelled (1,001 by
    v1)`; with no row of its own `champion v3: 0 logged rows of its own (1,001 by v1)`."""
    own = windows.get(champion)
    mine = f"champion v{champion}: 0 logged rows of its own"
    if own is not None and own.rows:
        mine = f"champion v{champion}: " + rows_said(own.rows, own.checked, own.labelled).replace(
            " rows", " logged rows of its own", 1
        )
    others = [f"{w.rows:,} by v{v}" for v, w in windows.items() if v != champion and w.rows]
    return mine + (f" ({', '.join(others)})" if others else "")


def version_figures(
    w: VersionWindow,
    reference: pd.DataFrame | None,
    features: FeaturesCfg,
    cfg: MonitorCfg,
    threshold: float,
    task: str,
    classes: list | None,
) -> dict:
    """Another version's figures on its own rows: rows, checked, labelled, live metrics (its own answers
    against their labels; None under monitor.min_labels) and its traffic's input drift share against the
    champion's training data (None under monitor.min_rows, or without a reference)."""
    from mlpipe.monitoring.drift import drift_report, drift_summary
    from mlpipe.monitoring.monitor import coerce_like, live_performance

    live = live_performance(w.frame, threshold, cfg.min_labels, task, classes) if w.checked else None
    share = None
    if reference is not None and w.rows >= cfg.min_rows:
        current = coerce_like(w.frame, reference, features)
        share = drift_summary(drift_report(reference, current, features).dict()).get("drift_share")
    return {
        "rows": w.rows,
        "checked": w.checked,
        "labelled": w.labelled,
        "live_metrics": live,
        "input_drift_share": share,
    }


def other_version_line(version: str, figures: dict, metric: str) -> str:
    """`v1 (not the champion; information only): 1,001 rows, 1,001 labelled; live r2 -23.9; input drift share
    0.6 against the champion's training data`."""
    live = (figures["live_metrics"] or {}).get(metric)
    parts = [
        rows_said(figures["rows"], figures["checked"], figures["labelled"]),
        f"live {metric} {round(live, 4) if live is not None else 'none (too few labels)'}",
    ]
    if figures["input_drift_share"] is not None:
        parts.append(f"input drift share {figures['input_drift_share']} against the champion's training data")
    return f"v{version} (not the champion; information only): " + "; ".join(parts)
