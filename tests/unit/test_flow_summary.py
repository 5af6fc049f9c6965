"""The retrain summary's pure parts: where the run's link points, and the change against the champion."""

from __future__ import annotations

from mlpipe.flows.common import metric_rows, run_link, runs_link, vs_champion


def test_the_run_link_follows_the_tracking_server_and_names_no_fixed_port_for_a_local_store():
    assert (
        run_link("http://127.0.0.1:5123/", "1", "abc")
        == "http://127.0.0.1:5123/#/experiments/1/runs/abc?workflowType=machine_learning"
    )
    local = run_link("sqlite:////p/mlruns/mlflow.db", "1", "abc")
    assert (
        "5000" not in local
        and local.endswith("/#/experiments/1/runs/abc?workflowType=machine_learning")
        and "mlpipe ui" in local
    )


def test_the_runs_link_opens_the_run_table_with_mlpipes_headline_metric_columns():
    assert runs_link("http://127.0.0.1:5123", "1") == (
        "http://127.0.0.1:5123/#/experiments/1/runs?workflowType=machine_learning"
        "&viewStateShareKey=mlpipe-headline"
    )
    assert runs_link("sqlite:////p/mlruns/mlflow.db", "1").startswith(
        "`mlpipe ui`, then /#/experiments/1/runs?"
    )


def test_the_change_is_against_the_champion_on_the_same_rows_or_not_shown():
    metrics = {"roc_auc": 0.70, "log_loss": 0.50, "n_test": 10}
    rows = metric_rows(metrics, {"roc_auc": 0.72, "log_loss": 0.49})
    assert {r["metric"]: r["change"] for r in rows}["roc_auc"] == -0.02
    assert vs_champion(rows)[0].startswith("  vs champion:   roc_auc -0.02")
    assert vs_champion(metric_rows(metrics, None)) == []


def test_the_printed_summary_points_at_the_run_page_and_run_table_on_no_fixed_port():
    from dataclasses import replace

    from test_last_run import summary

    from mlpipe.flows.common import render_text

    uri = "sqlite:////p/mlruns/mlflow.db"
    local = replace(
        summary(), tracking_uri=uri, run_link=run_link(uri, "1", "r1"), runs_link=runs_link(uri, "1")
    )
    text = render_text(local)
    assert "5000" not in text.replace(uri, "")
    assert "  run page:      `mlpipe ui`, then /#/experiments/1/runs/r1?" in text
    assert "  runs table:    `mlpipe ui`, then /#/experiments/1/runs?" in text
    assert "open the UI:   mlpipe ui" in render_text(replace(local, run_link="", runs_link=""))


def test_the_printed_metrics_name_the_positive_class_they_are_about():
    from dataclasses import replace

    from test_last_run import summary

    from mlpipe.flows.common import render_text

    line = next(
        x for x in render_text(replace(summary(), positive_class="Yes")).splitlines() if "metrics:" in x
    )
    assert line.endswith("(positive class 'Yes')")
    assert "positive class" not in render_text(replace(summary(), positive_class=None))


def test_a_run_without_a_batch_says_it_has_no_batch_drift_and_a_run_with_one_what_it_compared():
    from dataclasses import replace

    from test_last_run import summary

    from mlpipe.flows.common import NO_BATCH_DRIFT, RunSummary, render_markdown, render_text

    none = replace(summary(), drift_share=None, drift_note=NO_BATCH_DRIFT)
    assert "  drift share:   None (no new batch: no batch drift)\n" in render_text(none)
    assert "- drift share: None (no new batch: no batch drift)\n" in render_markdown(none)
    note = "batch-2013-04-01.parquet vs 51234 training rows before 2013-04-01 04:00:00+00:00"
    assert f"  drift share:   0.1 ({note})\n" in render_text(replace(summary(), drift_note=note))
    recorded = {k: v for k, v in summary().as_dict().items() if k != "drift_note"}  # a record from before
    assert RunSummary(**recorded).drift_line == "0.1 (newest batch vs training data)"
