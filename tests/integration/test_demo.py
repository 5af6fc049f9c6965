"""`mlpipe demo` end to end on the two-week slice: it clones the project, trains, serves, replays the
next week as traffic with feedback, monitors, (maybe) retrains, and its closing table agrees with what
the MLflow registry and the prediction log hold afterwards. The user's project is left untouched."""

from __future__ import annotations

import sqlite3

import pytest
from conftest import git, mlpipe, tracking_client

pytestmark = pytest.mark.integration


def test_demo_tells_the_whole_story_and_its_table_matches_the_record(template_repo, tmp_path):
    head = git(template_repo, "rev-parse", "HEAD")
    dest = tmp_path / "demo"
    proc = mlpipe(template_repo, "demo", "--dir", str(dest), "--traffic-rows", "600")
    out = proc.stdout
    for n in range(1, 8):
        assert f"[{n}/7]" in out, out
    assert "| step | what happened | s |" in out and "mlpipe ui --root" in out

    client = tracking_client(dest)
    champion = client.get_model_version_by_alias("flights-late", "champion").version
    assert f"swapped to version {champion}" in out or (
        champion == "1" and "retrain | not triggered" in out
    ), out
    monitoring = client.search_runs(
        [client.get_experiment_by_name("mlpipe").experiment_id],
        filter_string="tags.`mlpipe.kind` = 'monitoring'",
    )
    assert len(monitoring) == 1 and monitoring[0].info.run_id in out
    with sqlite3.connect(dest / ".mlpipe" / "predictions.db") as db:
        rows, labelled = db.execute(
            "select count(*), (select count(*) from feedback) from predictions"
        ).fetchone()
    assert rows == 600 + 150 and labelled == 600 + 150, "every replayed row answered, logged and labelled"
    assert git(template_repo, "rev-parse", "HEAD") == head and not (template_repo / "mlruns").exists()
