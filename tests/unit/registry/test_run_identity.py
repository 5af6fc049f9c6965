"""Runs that say what they are (issue 32): a name built from what changed, only the params that shape the
model as MLflow params, the gate's verdicts as a table opening the description, a flow-run state named
after the outcome, changes read as better or worse, and a lineage artifact that never goes stale."""

from __future__ import annotations

import pandas as pd
import pytest

from mlpipe.flows.common import change_cell, direction, markdown_link, metric_rows, run_link, vs_champion
from mlpipe.flows.retrain_results import outcome_state
from mlpipe.registry import views
from mlpipe.registry.lineage import frozen_lineage, render_lineage
from mlpipe.registry.tracking import (
    MODEL_SECTIONS,
    data_period,
    model_params,
    param_changes,
    renamed_for_version,
    run_name,
    stage_param_keys,
)
from mlpipe.release.gate import gate_note, gate_table, with_gate_note
from mlpipe.release.infra import Check

RAW = {
    "seed": 42,
    "features": {"categorical": ["carrier", "origin"]},
    "train": {"estimator": "hist_gradient_boosting", "hyperparams": {"learning_rate": 0.1, "max_iter": 200}},
    "retrain": {"cron": "0 3 * * *", "landing_dir": "landing"},
    "deploy": {"cores": 1},
    "sweep": {"grid": {"learning_rate": [0.05, 0.1]}},
    "monitor": {"window_rows": 50000},
    "gate": {"tolerance": {"roc_auc": 0.01}},
}


def test_only_the_params_the_stages_read_are_mlflow_params_and_a_list_reads_as_one_line():
    logged = model_params(RAW, ("seed", "features", "train"))
    assert logged == {
        "seed": "42",
        "features.categorical": "carrier, origin",
        "train.estimator": "hist_gradient_boosting",
        "train.hyperparams.learning_rate": "0.1",
        "train.hyperparams.max_iter": "200",
    }
    assert not [k for k in logged if k.split(".")[0] in {"retrain", "deploy", "sweep", "monitor", "gate"}]


def test_a_range_is_one_param():
    raw = {
        "validate": {
            "ranges": {"distance": {"min": 1, "max": 6000}, "late": {"max": 1}},
            "max_null_rate": 0.6,
        }
    }
    assert model_params(raw, ("validate",)) == {
        "validate.ranges.distance": "1..6000",
        "validate.ranges.late": "..1",
        "validate.max_null_rate": "0.6",
    }


def test_the_stages_params_come_from_dvc_yaml_and_without_one_the_model_sections(tmp_path):
    dvc_yaml = tmp_path / "dvc.yaml"
    dvc_yaml.write_text(
        "stages:\n  split:\n    params: [seed, split]\n"
        "  train:\n    params: [seed, train, {extra.yaml: [x]}]\n"
    )
    assert stage_param_keys(dvc_yaml) == ("seed", "split", "train")
    assert stage_param_keys(tmp_path / "missing.yaml") == MODEL_SECTIONS
    # a dotted key names that value only, not its whole section
    assert model_params(RAW, ("train.hyperparams.learning_rate",)) == {
        "train.hyperparams.learning_rate": "0.1"
    }


def test_the_run_name_says_the_version_the_period_and_the_param_that_changed():
    now = model_params(RAW, ("train",))
    before = now | {"train.hyperparams.learning_rate": "0.05"}
    changes = param_changes(now, before)
    assert changes == ["learning_rate 0.05→0.1"]
    name = run_name("3", "2013-01-01..2013-04-30", changes, {"data_changed": False})
    assert name == "v3 · learning_rate 0.05→0.1 · 2013-01-01..2013-04-30"
    # the run before it differed only in hex; now two runs with different params have different names
    assert name != run_name("3", "2013-01-01..2013-04-30", param_changes(now, now), {"data_changed": False})


def test_a_first_run_and_a_run_that_changed_only_data_or_code_say_so():
    assert run_name("1", "2013-01-01..2013-03-31", [], None) == "v1 · first run · 2013-01-01..2013-03-31"
    assert run_name("2", "p", [], {"data_changed": True}) == "v2 · new data · p"
    assert run_name("2", "p", ["lr 1→2"], {"data_changed": True}) == "v2 · lr 1→2 · new data · p"
    assert run_name("2", "p", [], {"data_changed": False}) == "v2 · same params and data · p"
    assert run_name(None, "p", [], None) == "first run · p"


def test_many_changes_are_cut_to_three_and_a_count_and_keys_new_since_are_not_compared():
    now = {f"train.hyperparams.h{i}": "2" for i in range(5)} | {"train.new": "x"}
    before = {f"train.hyperparams.h{i}": "1" for i in range(5)}
    assert param_changes(now, before) == ["h0 1→2", "h1 1→2", "h2 1→2", "+2 more"]
    assert param_changes(now, None) == []


def test_the_data_period_is_the_rows_dates_or_their_count_without_a_time_column():
    train = pd.DataFrame(
        {"t": pd.to_datetime(["2013-01-01 05:00", "2013-02-01 00:00"], utc=True), "x": [1, 2]}
    )
    test = pd.DataFrame({"t": pd.to_datetime(["2013-03-31 23:00"], utc=True), "x": [3]})
    assert data_period({"train": train, "test": test}, "t") == "2013-01-01..2013-03-31"
    assert data_period({"train": train, "test": test}, None) == "3 rows"


@pytest.mark.parametrize(
    ("name", "version", "expected"),
    [
        ("v3 · first run · p", "3", None),
        ("v3 · first run · p", "4", "v4 · first run · p"),
        ("first run · p", "2", "v2 · first run · p"),
    ],
)
def test_a_run_named_for_a_version_it_did_not_get_is_renamed(name, version, expected):
    assert renamed_for_version(name, version) == expected


CHECKS = [
    Check("data_validation", "passed", "no rule broken", True),
    Check("metric.roc_auc", 0.63, 0.64, False, "(same rows)"),
    Check("diff.changed_share", 0.136, 0.1, False, "a|b"),
]


def test_the_description_opens_with_the_decision_and_a_table_of_every_criterion():
    note = with_gate_note("**binary** model of `late`.", gate_note("kept champion", "4", CHECKS))
    first, second, *rest = note.splitlines()
    assert first == "**Gate: kept champion (failed: metric.roc_auc, diff.changed_share)** (version 4)"
    # the deciding facts in numbers where the collapsed description still shows them
    assert second == "Failed: metric.roc_auc 0.63 (bound 0.64); diff.changed_share 0.136 (bound 0.1)"
    table = [line for line in rest if line.startswith("| ") and "criterion" not in line]
    assert [row.split(" | ")[0] for row in table] == [
        "| metric.roc_auc",
        "| diff.changed_share",
        "| data_validation",
    ]
    assert "| criterion | value | bound | verdict |" in rest
    assert "| diff.changed_share | 0.136 | 0.1 | **FAIL** a\\|b |" in rest  # a pipe in a cell stays a cell
    assert "| data_validation | passed | no rule broken | pass  |" in rest
    assert note.endswith("**binary** model of `late`.")
    # a later decision (mlpipe promote) replaces the gate's section, never stacks a second one
    again = with_gate_note(note, gate_note("promoted manually by me: ok", "4", CHECKS[:1]))
    assert again.count("**Gate: ") == 1 and again.startswith("**Gate: promoted manually by me: ok")
    assert again.endswith("**binary** model of `late`.")


def test_the_gate_table_artifact_holds_value_bound_and_verdict_per_criterion():
    table = gate_table(CHECKS)
    assert table["criterion"] == ["data_validation", "metric.roc_auc", "diff.changed_share"]
    assert table["bound"][1] == "0.64" and table["verdict"] == ["pass", "FAIL", "FAIL"]


@pytest.mark.parametrize(
    ("decision", "version", "quarantined", "already", "name"),
    [
        ("promoted", "3", 0, False, "Promoted"),
        ("kept champion", "3", 0, False, "Kept champion"),
        ("not promoted (no champion yet: nothing is served)", "1", 0, False, "Not promoted"),
        ("not registered: trained from uncommitted changes", "unregistered", 0, False, "Not registered"),
        ("promoted", "3", 0, True, "Judged before"),
        ("promoted", "3", 1, False, "Quarantined"),
    ],
)
def test_the_flow_run_state_is_named_after_the_outcome(decision, version, quarantined, already, name):
    assert outcome_state(decision, version, "", quarantined, already)[0] == name


def test_the_state_message_says_why_in_numbers():
    name, message = outcome_state("kept champion", "4", "metric.roc_auc 0.63 (bound 0.64)")
    assert name == "Kept champion"
    assert message == "version 4: kept champion; failed metric.roc_auc 0.63 (bound 0.64)"
    assert outcome_state("promoted", "2", "", 1)[1] == "version 2: promoted; 1 batch(es) quarantined"
    assert outcome_state("not registered: x", "unregistered")[1] == "not registered: x"


def test_a_change_reads_better_or_worse_by_the_metrics_own_sense():
    rows = metric_rows({"roc_auc": 0.70, "log_loss": 0.48}, {"roc_auc": 0.72, "log_loss": 0.49})
    by = {r["metric"]: r for r in rows}
    assert by["roc_auc"]["direction"] == "worse" and by["log_loss"]["direction"] == "better"
    assert change_cell(by["log_loss"]) == "-0.01 (better: lower is better)"
    assert change_cell(by["roc_auc"]) == "-0.02 (worse: higher is better)"
    assert (
        vs_champion(rows)[0]
        == "  vs champion:   roc_auc -0.02 (worse), log_loss -0.01 (better) (the gate's rows)"
    )
    assert direction("rmse", 0.0) == "same" and direction("rmse", None) == ""
    assert direction("n_test", 5) == "" and change_cell({"metric": "n_test", "change": 0}) == "+0"


def test_links_in_the_prefect_artifact_are_markdown_links():
    server = run_link("http://mlflow.example:5000", "1", "abc")
    assert markdown_link("the run page", server) == f"[the run page]({server})"
    local = markdown_link("the run page", run_link("sqlite:////p/mlruns/mlflow.db", "1", "abc"))
    assert local.startswith(
        "[the run page](http://127.0.0.1:5000/#/experiments/1/runs/abc?workflowType=machine_learning)"
    )
    assert "mlpipe ui" in local


def test_the_saved_view_shows_decision_champion_same_rows_estimator_and_varying_hyperparams():
    runs = [
        {"train.hyperparams.learning_rate": "0.1", "train.hyperparams.max_iter": "200"},
        {"train.hyperparams.learning_rate": "0.05", "train.hyperparams.max_iter": "200"},
        {"seed": "42"},
    ]
    varying = views.varying_params(runs)
    assert varying == ("train.hyperparams.learning_rate",)
    columns = views.run_table_state("binary", varying)["selectedColumns"]
    for wanted in (
        "tags.`mlpipe.gate.decision`",
        "tags.`mlpipe.champion`",
        "metrics.`champion_same_rows.roc_auc`",
        "params.`train.estimator`",
        "params.`train.hyperparams.learning_rate`",
    ):
        assert wanted in columns
    assert "params.`train.hyperparams.max_iter`" not in columns


def test_the_varying_columns_saved_are_kept_when_the_view_is_only_checked():
    state = views.run_table_state("binary", ("train.hyperparams.learning_rate",))
    tags = {views.RUN_TABLE_VIEW_TAG: views.saved_view(state, 1)}
    assert views.saved_varying(tags) == ("train.hyperparams.learning_rate",)
    assert views.saved_varying({}) == ()


def test_the_lineage_artifact_holds_no_alias_and_says_where_they_are_read():
    d = {
        "registry": [{"name": "m", "version": "3", "aliases": ["challenger"], "reproduced": None}],
        "run": {"run_id": "r", "status": "FINISHED", "user": "u", "host": "h"},
        "git": {"commit": "c", "clean": True},
        "data_md5": "d",
        "split": {},
        "stage_outputs": {},
        "model_sha256": "s",
        "params": {},
        "metrics": {},
        "drift_share": None,
        "reproductions": [],
    }
    assert "v3 [challenger]" in render_lineage(d)  # `mlpipe lineage`: read when run
    frozen = render_lineage(frozen_lineage(d))
    assert "challenger" not in frozen and "`mlpipe lineage` reads them when run" in frozen
    assert d["registry"][0]["aliases"] == ["challenger"]  # the live checklist is left as it was
