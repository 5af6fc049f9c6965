"""Labelled traffic closes the loop: on a retrain verdict the logged inputs whose labels came back are landed
once, as a batch of the project's own columns and types that the landing check accepts; with nothing new
to train on, the monitor says so instead of starting a retrain that trains nothing."""

from __future__ import annotations

import json
import time
from datetime import date

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from mlpipe.config import ProjectPaths
from mlpipe.data.frames import write_frame
from mlpipe.data.landing import check_landed
from mlpipe.monitoring.feedback_batch import LANDED, count_not_landed, land_feedback
from mlpipe.monitoring.new_data import land_new_data
from mlpipe.serving.prediction_log import PredictionLog, inputs_json, log_rows

ANSWERED_AT = 1_700_000_000.0  # when the service answered (2023-11-14 22:13:20 UTC)


@pytest.fixture
def project(tmp_path, make_frame):
    """A project whose data/ holds a day of flights, and the traffic of 40 more flights in its log."""
    paths = ProjectPaths(tmp_path)
    write_frame(make_frame(24, seed=1), paths.data / "batch-2013-01-01.parquet")
    traffic = make_frame(40, seed=2, start="2013-01-02 05:00")
    return paths, traffic, f"sqlite:///{tmp_path / '.mlpipe-log.db'}"


def serve(url: str, traffic, features: list[str], first: int, n: int, labelled: int) -> str:
    """Rows first..first+n of `traffic` answered as one request; the first `labelled` get their label back."""
    part = traffic.iloc[first : first + n]
    records = [json.loads(t) for t in inputs_json(part[features].to_dict(orient="records"))]
    rid = f"req-{first}"
    log = PredictionLog(url)
    log.append(log_rows(rid, records, [0.3] * n, [0] * n, [], "flights-late", "1", 1.0, ts=ANSWERED_AT))
    assert log.flush(30)
    if labelled:
        assert log.add_feedback(rid, part["late"].iloc[:labelled].tolist()) == labelled
    log.close()
    return rid


def landed_ids(url: str) -> list[int]:
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        ids = sorted(conn.execute(sa.select(LANDED.c.prediction_id)).scalars())
    engine.dispose()
    return ids


def test_labelled_traffic_lands_once_with_the_project_s_columns_and_types(params, project):
    paths, traffic, url = project
    features = list(params.features.columns)
    serve(url, traffic, features, 0, 30, labelled=20)  # log ids 1..30, labels on 1..20
    landing, quarantine = paths.root / "landing", paths.root / "quarantine"

    (batch,) = land_feedback(url, params, landing, paths.data, quarantine)
    assert batch.path.name == "feedback-1-20.parquet" and batch.rows == 20
    schema, data = pq.read_schema(batch.path), pq.read_schema(paths.data / "batch-2013-01-01.parquet")
    assert schema.names == params.record_columns
    assert all(schema.field(c).type == data.field(c).type for c in schema.names), "data/'s own types"
    landed = pq.read_table(batch.path).to_pandas()
    assert landed["late"].tolist() == traffic["late"].iloc[:20].tolist(), "the target is the label sent back"
    assert (landed["time_hour"] == time.strftime("%Y-%m-%d %H:%M:%S+00:00", time.gmtime(ANSWERED_AT))).all()
    assert landed["carrier"].tolist() == traffic["carrier"].iloc[:20].tolist()
    verdict = check_landed(batch.path, params, {}, paths.data)
    assert verdict.accepted and verdict.rows == 20, verdict.violations

    assert land_feedback(url, params, landing, paths.data, quarantine) == [], "landed once"
    assert landed_ids(url) == list(range(1, 21)) and count_not_landed(url) == 0

    # labels for rows 21..30 come late, then a new request (ids 31..40) is labelled too
    log = PredictionLog(url)
    assert log.add_feedback("req-0", traffic["late"].iloc[:30].tolist()) == 30  # the first 20 again, + 10
    log.close()
    serve(url, traffic, features, 30, 10, labelled=10)
    assert count_not_landed(url) == 20
    (later,) = land_feedback(url, params, landing, paths.data, quarantine)
    assert later.path.name == "feedback-21-40.parquet" and later.rows == 20
    assert landed_ids(url) == list(range(1, 41))


def test_a_batch_name_data_already_holds_is_never_reused(params, project):
    paths, traffic, url = project
    serve(url, traffic, list(params.features.columns), 0, 5, labelled=5)
    # a log started afresh numbers its rows from 1 again
    write_frame(traffic.head(1), paths.data / "feedback-1-5.parquet")
    (batch,) = land_feedback(url, params, paths.root / "landing", paths.data, paths.root / "quarantine")
    assert batch.path.name == "feedback-1-5.1.parquet"


def test_a_retrain_verdict_with_nothing_new_says_so(params, project):
    paths, traffic, url = project
    serve(url, traffic, list(params.features.columns), 0, 10, labelled=10)
    found = land_new_data(paths, params, url, today=date(2013, 1, 20))
    assert not found.batches and not (paths.root / "landing").exists()
    assert found.line("input drift share 0.6 > monitor.drift_share_max 0.5") == (
        "retrain wanted (input drift share 0.6 > monitor.drift_share_max 0.5) but nothing new to train on: "
        "10 labelled logged rows not used (monitor.feedback_as_batch: false), no batch waiting, "
        "the source's next period 2013-01-03..2013-02-01 has not ended"
    )

    allowed = params.model_copy(
        update={"monitor": params.monitor.model_copy(update={"feedback_as_batch": True})}
    )
    found = land_new_data(paths, allowed, url, today=date(2013, 1, 20))
    assert found.feedback == ["feedback-1-10.parquet"] and found.batches == ["feedback-1-10.parquet"]
    assert found.line("drift") == "retrain (drift) on new data: landed feedback-1-10.parquet"
    again = land_new_data(paths, allowed, url, today=date(2013, 1, 20))
    assert again.waiting == ["feedback-1-10.parquet"] and again.feedback == [], "a batch waits: no second one"


def test_labelled_traffic_does_not_move_the_source_s_next_period(params, project):
    from mlpipe.data.landing import source_position

    paths, traffic, url = project
    before = source_position(paths.data, paths.root / "landing", params)
    serve(url, traffic, list(params.features.columns), 0, 5, labelled=5)
    (batch,) = land_feedback(url, params, paths.root / "landing", paths.data, paths.root / "quarantine")
    batch.path.rename(paths.data / batch.path.name)  # taken in, as a retrain would
    assert before == source_position(paths.data, paths.root / "landing", params)
    assert str(before) == "2013-01-02 04:00:00+00:00", "the newest flight of data/, not when traffic came"
