"""Evidently drift: a shifted frame drifts, the same distribution does not; files are self-contained."""

from __future__ import annotations

import json

from mlpipe.drift import drift_report, drift_summary, save_drift


def test_shifted_batch_drifts_and_reports_render_without_a_cdn(make_frame, params, tmp_path):
    ref = make_frame(400, seed=1)
    same = make_frame(400, seed=2)
    shifted = make_frame(400, seed=3).assign(temp=lambda d: d["temp"] + 80, distance=lambda d: d["distance"] * 3)
    calm = drift_summary(drift_report(ref, same, params.features).dict())
    html, js, hot = save_drift(drift_report(ref, shifted, params.features), tmp_path / "drift")
    # Column scores are what Evidently's method gives (a p-value on small samples, a distance on
    # large ones), so the verdict is read from the drifted-column count.
    assert hot["drifted_columns"] > calm["drifted_columns"] and 0 < hot["drift_share"] <= 1
    assert set(hot["columns"]) == set(params.features.columns)
    text = html.read_text()
    assert "<html" in text.lower() and '<script src="http' not in text
    assert json.loads(js.read_text())["summary"] == hot


def test_summary_of_an_empty_snapshot_is_empty():
    assert drift_summary({}) == {"drifted_columns": None, "drift_share": None, "columns": {}}
