"""The promotion gate with the real flow, registry and probe: a worse challenger is refused with its
metric named in numbers, a churn cap (gate.max_changed_share, when set) refuses until promoted by hand,
a better one is promoted by the differential test of negative flips with no override, promote runs the
infra check, rollback restores the previous champion, and every decision is on the MLflow runs. The
tests share one project and run in order."""

from __future__ import annotations

import pytest
import yaml
from conftest import commit_all, copy_project, edit_params, git, mlpipe, run_id_of, tracking_client

pytestmark = pytest.mark.integration
MODEL = "flights-late"


@pytest.fixture(scope="module")
def gated(first_run, tmp_path_factory):
    root = copy_project(first_run[0], tmp_path_factory.mktemp("gate") / "project")
    hyper = yaml.safe_load((root / "params.yaml").read_text())["train"]["hyperparams"]
    return root, hyper


def retrain_with(root, message: str, **sections):
    edit_params(root, **sections)
    commit_all(root, message)
    return mlpipe(root, "run")


def alias(root, name: str) -> str:
    return str(tracking_client(root).get_model_version_by_alias(MODEL, name).version)


def tags_of(root, version: str) -> dict:
    return tracking_client(root).get_model_version(MODEL, version).tags


def test_a_worse_challenger_is_kept_out_with_the_metric_named(gated):
    root, hyper = gated
    proc = retrain_with(root, "train: one boosting round", train={"hyperparams": {**hyper, "max_iter": 1}})
    assert "gate:          kept champion (failed: " in proc.stdout and "metric.roc_auc" in proc.stdout
    failed = next(line for line in proc.stdout.splitlines() if "FAILED metric.roc_auc: FAIL (value " in line)
    assert "bound" in failed and "to accept anyway: gate.tolerance.roc_auc, or `mlpipe promote" in failed
    assert alias(root, "champion") == "1" and tags_of(root, "2")["mlpipe.gate.decision"] == "kept champion"
    run = tracking_client(root).get_run(run_id_of(proc))
    assert run.data.tags["mlpipe.gate.metric.roc_auc"].startswith("metric.roc_auc: FAIL")
    # bounds and verdicts are no metrics: a table opening the run's description, read without a hover
    assert not [k for k in run.data.metrics if k.startswith("gate.")], sorted(run.data.metrics)
    note = run.data.tags["mlflow.note.content"]
    assert note.startswith("**Gate: kept champion (failed: "), note[:200]
    row = next(line for line in note.splitlines() if line.startswith("| metric.roc_auc |"))
    value, bound = (float(cell) for cell in row.split("|")[2:4])
    assert value < bound and "**FAIL**" in row
    assert run.info.run_name.startswith("v2 · max_iter 40→1 · "), run.info.run_name
    # the flow run's state says the outcome, not a bare Completed
    logged = proc.stdout + proc.stderr
    state = next(line for line in logged.splitlines() if "Flow run 'retrain-" in line and "Finished" in line)
    assert "Finished in state Kept champion('version 2: kept champion; failed " in state, state
    assert "metric.roc_auc " in state and "(bound " in state, state
    assert run.data.tags["mlpipe.gate.infra.p99_latency_ms"].startswith("infra.p99_latency_ms: pass")
    # one truth for "better than the champion": the summary's change is the gate's, on the gate's rows
    champ = run.data.metrics["champion_same_rows.roc_auc"]
    assert f"(champion {round(champ, 6)}, at least)" in run.data.tags["mlpipe.gate.metric.roc_auc"]
    change = round(run.data.metrics["roc_auc"] - champ, 6)
    assert f"  vs champion:   roc_auc {change:+}" in proc.stdout, proc.stdout


def test_too_many_flipped_predictions_are_refused_until_promoted_by_hand(gated):
    root, hyper = gated
    proc = retrain_with(
        root,
        "train: 60 rounds, no flips allowed",
        train={"hyperparams": {**hyper, "max_iter": 60}},
        gate={"max_changed_share": 0.0},
    )
    assert "diff.changed_share" in tags_of(root, "3")["mlpipe.gate.failed"].split(","), proc.stdout
    assert alias(root, "champion") == "1"
    out = mlpipe(root, "promote", f"models:/{MODEL}/3", "--reason", "flips reviewed with ops").stdout
    assert "champion is now version 3 (was 1)" in out
    assert alias(root, "champion") == "3" and alias(root, "previous") == "1"
    assert tags_of(root, "3")["mlpipe.gate.decision"].endswith(": flips reviewed with ops")


def test_promote_runs_the_infra_check_and_refuses_a_model_over_budget(gated):
    root, _ = gated
    for budget, criterion in (
        ({"max_p99_latency_ms": 0.0001}, "infra.p99_latency_ms"),
        ({"max_model_mb": 0.0001}, "infra.model_mb"),
    ):
        edit_params(root, deploy=budget)
        proc = mlpipe(root, "promote", f"models:/{MODEL}/2", "--reason", "try", check=False)
        git(root, "checkout", "params.yaml")
        assert proc.returncode == 1 and criterion in proc.stderr and "fails the infra check" in proc.stderr
    assert alias(root, "champion") == "3"


def test_rollback_restores_the_previous_champion(gated):
    root, _ = gated
    out = mlpipe(root, "rollback", "--reason", "latency complaints").stdout
    assert "champion is now version 1 (rolled back from 3)" in out
    assert alias(root, "champion") == "1" and tags_of(root, "3")["mlpipe.rolled_back"].endswith(
        "latency complaints"
    )
    assert mlpipe(root, "rollback", check=False).returncode == 1, "nothing left to roll back to"


def test_a_better_challenger_is_promoted_by_the_differential_test_without_an_override(gated):
    root, hyper = gated
    # larger leaves: better roc_auc, average precision and log loss than the champion on this slice
    proc = retrain_with(
        root,
        "train: min_samples_leaf 100; churn shown, not capped",
        train={"hyperparams": {**hyper, "min_samples_leaf": 100}},
        gate={"max_changed_share": None},
    )
    assert "gate:          promoted; champion is version 4" in proc.stdout, proc.stdout
    assert alias(root, "champion") == "4" and alias(root, "previous") == "1"
    run = tracking_client(root).get_run(run_id_of(proc))
    flips = run.data.tags["mlpipe.gate.diff.negative_flips"]
    assert flips.startswith("diff.negative_flips: pass (value ") and "the other way" in flips
    assert "mlpipe.gate.diff.changed_share" not in run.data.tags
    assert all(
        run.data.tags[f"mlpipe.gate.metric.{m}"].split(": ")[1].startswith("pass")
        for m in ("roc_auc", "average_precision", "log_loss")
    )
    assert run.data.tags["mlpipe.gate.baseline.log_loss"].startswith("baseline.log_loss: pass")
    assert run.data.metrics["baseline.roc_auc"] == 0.5
    assert "  vs baseline:   roc_auc " in proc.stdout
    assert run.data.tags["mlpipe.gate.decision"] == "promoted"
