"""Team mode, the prediction log on PostgreSQL (127.0.0.1:5432 on the development and CI machines):
the same code as the SQLite default, switched by the URL only. Each test gets a database of its own,
dropped afterwards. Set MLPIPE_POSTGRES_URL to use another server."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import REPO

from mlpipe.config import load_params
from mlpipe.monitoring.monitor import read_columns, read_window
from mlpipe.serving.prediction_log import PredictionLog, log_rows

pytestmark = pytest.mark.integration


def test_prediction_log_on_postgres_loses_nothing_and_feeds_the_monitor(pg_url):
    features = load_params(REPO / "params.yaml").features
    log = PredictionLog(pg_url, batch=50)
    rng = np.random.default_rng(3)
    ids: list[str] = []

    def writer(k: int) -> None:
        for i in range(100):
            rid = f"t{k}-{i}"
            ids.append(rid)
            record = {"carrier": "UA", "temp": float(rng.normal(50, 10)), "distance": 1000 + i}
            log.append(log_rows(rid, [record], [0.25], [0], [], "flights-late", "1", 1.5))

    threads = [threading.Thread(target=writer, args=(k,)) for k in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert log.flush(30)
    assert log.add_feedback("t3-7", [1]) == 1 and log.add_feedback("nope", [1]) == 0
    log.close()
    assert log.written == 800 and not log.errors, "count in == count logged"

    window, rows = read_window(pg_url, 500, 100)
    assert rows == 500 and len(window) == 100, "sampled in the database by id stride"
    assert set(window.columns) >= {"carrier", "temp", "distance", "proba", "label", "model_version"}
    whole = read_columns(pg_url, 800, ["temp", "carrier", "proba"], features)
    assert len(whole) == 800 and whole["temp"].dtype == "float64" and set(whole["carrier"]) == {"UA"}
    engine = sa.create_engine(pg_url)
    with engine.connect() as conn:
        logged = conn.execute(sa.text("select count(*), count(distinct request_id) from predictions")).one()
        label = conn.execute(sa.text("select label from feedback where request_id = 't3-7'")).scalar_one()
        first = json.loads(
            conn.execute(sa.text("select inputs from predictions order by id limit 1")).scalar_one()
        )
    engine.dispose()
    assert tuple(logged) == (800, 800) and label == "1" and first["carrier"] == "UA"  # labels as text
