"""Evidently drift: a shifted frame drifts, the same distribution does not; files are self-contained."""

from __future__ import annotations

import json

from mlpipe.monitoring.drift import drift_report, drift_summary, save_drift, stride_sample


def test_shifted_batch_drifts_and_reports_render_without_a_cdn(make_frame, params, tmp_path):
    ref = make_frame(400, seed=1)
    same = make_frame(400, seed=2)
    shifted = make_frame(400, seed=3).assign(
        temp=lambda d: d["temp"] + 80, distance=lambda d: d["distance"] * 3
    )
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


def test_stride_sample_caps_rows_evenly_and_keeps_small_frames_whole(make_frame):
    df = make_frame(1000)
    assert stride_sample(df, 1000) is df
    sample = stride_sample(df, 300)
    assert len(sample) <= 300 and list(sample.index) == list(range(0, 1000, 4))  # every 4th, first to last
    assert stride_sample(df, 300).equals(sample)  # no randomness


def test_saved_summary_records_the_rows_evidently_saw(make_frame, params, tmp_path):
    ref, cur = make_frame(200, seed=1), make_frame(200, seed=2)
    rows = {"reference": 200, "current": 200, "max_rows": 1000, "reference_seen": 200, "current_seen": 200}
    _, js, summary = save_drift(drift_report(ref, cur, params.features), tmp_path / "d", rows)
    assert summary["rows"] == rows == json.loads(js.read_text())["summary"]["rows"]


def test_a_report_page_opens_with_its_title_and_what_it_compares_escaped():
    import pandas as pd

    from mlpipe.monitoring.drift import context_header, describe_side, titled

    times = pd.Series(pd.to_datetime(["2013-01-01", "2013-03-31"], utc=True))
    ref = describe_side("training split", "sha256 abc", times, 100, 50)
    cur = describe_side("batch <x>.parquet", "sha256 def", None, 10, 10)
    page = titled("<html><head></head><body><div>evidently</div></body></html>", "Drift A", "")
    assert page.startswith("<html><head><title>Drift A</title></head><body>")
    header = context_header("Drift <A>", ref, cur)
    assert "<h1>Drift &lt;A&gt;</h1>" in header and "batch &lt;x&gt;.parquet" in header
    assert "2013-01-01 00:00:00+00:00 .. 2013-03-31 00:00:00+00:00" in header and "100 (50 seen)" in header
    assert "<td>unknown</td>" in header


def test_time_passing_alone_is_not_drift_for_the_bundled_features(make_frame, params):
    """The same flights and weather a quarter later (only the dates differ) do not drift on the bundled
    features; with the calendar position (`month`, `day`) as features, they would."""
    from mlpipe.config import FeaturesCfg

    weeks = 24 * 7 * 2
    january, april = (
        make_frame(weeks, seed=5, start="2013-01-07"),
        make_frame(weeks, seed=5, start="2013-04-01"),
    )
    assert drift_summary(drift_report(january, april, params.features).dict())["drifted_columns"] == 0
    dated = FeaturesCfg(
        **(params.features.model_dump() | {"numerical": [*params.features.numerical, "month"]})
    )
    assert drift_summary(drift_report(january, april, dated).dict())["drifted_columns"] == 1
