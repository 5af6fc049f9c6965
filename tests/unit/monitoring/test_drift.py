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


# ---- what a run's drift report compares ------------------------------------------------------------


def test_a_run_compares_the_newest_batch_it_took_in_or_nothing(tmp_path):
    from mlpipe.monitoring.drift import batch_to_compare

    data = tmp_path / "data"
    taken = ["batch-2013-04-01.parquet", "b2-1.parquet"]  # data/ names, in landing order
    assert batch_to_compare(data, taken, []) == data / "b2-1.parquet"
    initial = [str(data / f"batch-2013-0{m}-01.parquet") for m in (2, 3, 1)]
    assert batch_to_compare(data, [], initial) == data / "batch-2013-03-01.parquet"
    assert batch_to_compare(data, [], []) is None  # a params-only change or a rerun: no batch drift


def _time_split(frame, test_fraction: float = 0.2):
    """The split stage's time split of `frame` (its train part)."""
    from mlpipe.pipeline.split import time_split_positions

    train_pos, _ = time_split_positions(frame["time_hour"].to_numpy(), test_fraction)
    return frame.iloc[train_pos].reset_index(drop=True)


def test_with_a_time_column_the_reference_is_the_training_rows_older_than_the_batch(make_frame, params):
    from mlpipe.monitoring.drift import reference_cut

    data = make_frame(24 * 40, seed=3, start="2013-01-01")  # 40 days, hourly
    batch = data[data["time_hour"] >= "2013-01-31"]  # the last 10 days
    training = _time_split(data)  # days 1-32: the batch's first two days are in it
    assert (training["time_hour"] >= batch["time_hour"].min()).sum() == 48
    cut = reference_cut(batch, "time_hour", params.record_columns)
    reference = cut.rows(training, batch)
    assert len(reference) == 24 * 30 and reference["time_hour"].max() < batch["time_hour"].min()
    assert cut.scope == "before 2013-01-31 00:00:00+00:00"
    assert cut.key == "before-2013-01-31T000000+0000"  # the cutoff, in a directory name


def test_without_a_time_column_the_reference_is_the_training_split_minus_the_batchs_rows(make_frame, params):
    from mlpipe.data.landing import row_hashes
    from mlpipe.monitoring.drift import reference_cut

    data = make_frame(600, seed=4).drop(columns=["time_hour"])
    batch = data.iloc[400:]
    training = data.sample(frac=0.8, random_state=0)  # a random split: some batch rows in training
    training = training.assign(hour=training["hour"].astype("float64"))  # a type the split widened
    match = [c for c in params.record_columns if c != "time_hour"]
    cut = reference_cut(batch, None, match)
    reference = cut.rows(training, batch)
    in_training = training.index.isin(batch.index).sum()
    assert 0 < in_training < len(batch) and len(reference) == len(training) - in_training
    assert not row_hashes(reference, match).isin(row_hashes(batch.astype({"hour": "float64"}), match)).any()
    assert cut.scope == "without the batch's rows" and cut.key.startswith("minus-batch-")
    assert reference_cut(batch, None, match[:-1]).key != cut.key  # other columns matched: another report


def test_too_few_reference_rows_give_no_report_and_say_why(make_frame, params):
    from mlpipe.monitoring.drift import MIN_REFERENCE_ROWS, reference_cut, too_few_reference

    data = make_frame(24 * 10, seed=5, start="2013-01-01")
    cut = reference_cut(data, "time_hour", params.record_columns)  # the only file: nothing is older
    assert len(cut.rows(data, data)) == 0
    assert too_few_reference(0, cut, "batch-2013-01-01.parquet") == (
        "no batch drift: 0 training rows before 2013-01-01 00:00:00+00:00 for batch-2013-01-01.parquet "
        f"(rule: at least {MIN_REFERENCE_ROWS})"
    )
    assert too_few_reference(MIN_REFERENCE_ROWS - 1, cut, "b") is not None
    assert too_few_reference(MIN_REFERENCE_ROWS, cut, "b") is None
