"""The safe loader's refusals, the infra check's budgets (with a real probe process), the gate's criteria."""

from __future__ import annotations

import json
import logging

import numpy as np
import pytest

from mlpipe.data.frames import write_frame
from mlpipe.errors import ModelRefused
from mlpipe.model.artifact import dump_model
from mlpipe.model.loading import check_packages, load_model_dir
from mlpipe.model.manifest import build_manifest, package_versions
from mlpipe.pipeline.features import select_features, target_vector
from mlpipe.pipeline.train import fit_model
from mlpipe.release.gate import _early_checks, diff_check, gate_verdict, metric_checks
from mlpipe.release.infra import Check, budget_checks, infra_check, precheck, round_check, summarise
from mlpipe.release.probe import all_decided, majority_decided


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory, make_frame, params):
    """A real fitted model directory: model.skops + manifest.json, and a sample of rows."""
    d = tmp_path_factory.mktemp("model")
    df = make_frame(400, seed=3)
    X, y = select_features(df, params.features), target_vector(df, params.dataset.target, params.task)
    cfg = params.train.model_copy(
        update={"hyperparams": {"max_iter": 10, "max_leaf_nodes": 8, "min_samples_leaf": 10}}
    )
    sha = dump_model(fit_model(cfg, params.features, X, y, seed=1, task="binary"), d / "model.skops")
    manifest = build_manifest(
        model_sha256=sha,
        seed=1,
        params_hash="p",
        data_md5=None,
        train_sha256="t",
        features=params.features,
        target=params.dataset.target,
        estimator=cfg.estimator,
    )
    (d / "manifest.json").write_text(json.dumps(manifest))
    write_frame(df, d.parent / "sample.parquet")
    return d


def test_the_recorded_file_loads(model_dir):
    loaded = load_model_dir(model_dir)
    assert loaded.sha256 == json.loads((model_dir / "manifest.json").read_text())["model_sha256"]
    assert hasattr(loaded.model, "predict_proba") and loaded.warnings == []


def test_a_tampered_model_file_is_refused_naming_file_expected_and_found(model_dir, tmp_path):
    import shutil

    d = shutil.copytree(model_dir, tmp_path / "m")
    raw = bytearray((d / "model.skops").read_bytes())
    raw[len(raw) // 2] ^= 0xFF
    (d / "model.skops").write_bytes(bytes(raw))
    recorded = json.loads((d / "manifest.json").read_text())["model_sha256"]
    with pytest.raises(ModelRefused) as err:
        load_model_dir(d)
    msg = str(err.value)
    assert str(d / "model.skops") in msg and f"{recorded} recorded at training" in msg and "\n" not in msg


def test_a_manifest_that_disagrees_with_the_recorded_hash_is_refused(model_dir):
    with pytest.raises(ModelRefused, match="manifest names sha256"):
        load_model_dir(model_dir, expected_sha256="0" * 64)


def test_a_major_minor_dependency_mismatch_is_refused(tmp_path):
    running = package_versions()
    recorded = dict(running, **{"scikit-learn": "0.24.2"})
    with pytest.raises(
        ModelRefused,
        match=r"scikit-learn .* running, model built with 0.24.2 \(rule: scikit-learn major.minor",
    ):
        check_packages(tmp_path / "model.skops", recorded, running)
    assert check_packages(
        tmp_path / "model.skops", recorded, running, allow_mismatch=True
    )  # allowed: a warning


def test_a_patch_difference_warns_only(model_dir, tmp_path, caplog):
    import shutil

    d = shutil.copytree(model_dir, tmp_path / "m")
    manifest = json.loads((d / "manifest.json").read_text())
    major, minor, *_ = manifest["packages"]["numpy"].split(".")
    manifest["packages"]["numpy"] = f"{major}.{minor}.999"
    (d / "manifest.json").write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="mlpipe"):
        loaded = load_model_dir(d)
    assert (
        len(loaded.warnings) == 1 and "numpy" in loaded.warnings[0] and "model_version_warning" in caplog.text
    )


def test_precheck_refuses_a_model_over_the_size_budget(model_dir, params):
    tight = params.deploy.model_copy(update={"max_model_mb": 0.001})
    (size, memory) = precheck(model_dir / "model.skops", tight)
    assert not size.passed and size.criterion == "infra.model_mb" and memory.passed


def test_infra_probe_measures_a_real_process_and_a_latency_budget_fails(model_dir, params):
    sha = json.loads((model_dir / "manifest.json").read_text())["model_sha256"]
    tight = params.deploy.model_copy(
        update={"max_p99_latency_ms": 0.0001, "single_row_requests": 20, "batch_rows": 500}
    )
    checks, figures = infra_check(model_dir, sha, model_dir.parent / "sample.parquet", tight)
    assert figures["cores"] == 1 and figures["peak_memory_mb"] > 10 and figures["throughput_rows_s"] > 0
    failed = [c.criterion for c in checks if not c.passed]
    assert failed == ["infra.p99_latency_ms"]


def test_infra_probe_reports_its_own_peak_memory_not_its_parents(model_dir, params):
    """Linux carries a parent's high-water mark into the child's ru_maxrss across fork/exec: a probe
    started by a flow holding 8.6 GB (10M rows) reported 8.6 GB, and the gate refused the model."""
    sha = json.loads((model_dir / "manifest.json").read_text())["model_sha256"]
    small = params.deploy.model_copy(update={"single_row_requests": 20, "batch_rows": 500})
    ballast = np.ones(
        800 * 2**20 // 8
    )  # 800 MiB held (and touched) by this process while it starts the probe
    _, figures = infra_check(model_dir, sha, model_dir.parent / "sample.parquet", small)
    assert ballast[-1] == 1.0
    assert 10 < figures["peak_memory_mb"] < 700


def test_the_probe_measures_the_champion_in_the_same_rounds(model_dir, params):
    sha = json.loads((model_dir / "manifest.json").read_text())["model_sha256"]
    small = params.deploy.model_copy(update={"single_row_requests": 20, "batch_rows": 500, "rounds": 3})
    checks, figures = infra_check(
        model_dir, sha, model_dir.parent / "sample.parquet", small, (model_dir, sha)
    )
    # both models in every round; the probe stops once the majority of the 3 planned is decided (2 passing)
    assert len(figures["rounds"]) == len(figures["champion"]["rounds"]) in (2, 3)
    assert figures["rounds_planned"] == 3
    assert set(figures["ratio_to_champion"]) == {
        "load_s",
        "p50_latency_ms",
        "p99_latency_ms",
        "throughput_rows_s",
    }
    latency = next(c for c in checks if c.criterion == "infra.p99_latency_ms")
    assert latency.value == figures["p99_latency_ms"] and "champion " in latency.detail


def test_a_champion_the_probe_cannot_load_leaves_the_challenger_judged_alone(model_dir, params):
    sha = json.loads((model_dir / "manifest.json").read_text())["model_sha256"]
    small = params.deploy.model_copy(update={"single_row_requests": 20, "batch_rows": 500, "rounds": 3})
    checks, figures = infra_check(
        model_dir, sha, model_dir.parent / "sample.parquet", small, (model_dir, "0" * 64)
    )
    assert figures["champion"]["error"].startswith("ModelRefused") and len(figures["rounds"]) in (2, 3)
    assert all(c.passed for c in checks) and "ratio_to_champion" not in figures


def rounds_of(p99: list[float], throughput: list[float] | None = None) -> list[dict]:
    """Per-round probe figures: these p99 latencies (and throughputs, else comfortably over any budget)."""
    throughput = throughput or [1e9] * len(p99)
    return [
        {
            "p50_latency_ms": v / 2,
            "p99_latency_ms": v,
            "throughput_rows_s": t,
            "wall_p99_latency_ms": 2 * v,
            "wait_share": 0.25,
        }
        for v, t in zip(p99, throughput, strict=True)
    ]


def test_budget_checks_compare_each_figure(params):
    figures = {"load_s": 1, "peak_memory_mb": 2000, "rounds": rounds_of([1, 1, 1], [10, 10, 10])}
    failed = [c.criterion for c in budget_checks(figures, params.deploy) if not c.passed]
    assert failed == ["infra.peak_memory_mb", "infra.throughput_rows_s"]


@pytest.mark.parametrize(
    ("p99", "passed"),
    [
        ([30, 150, 20, 140, 25], True),  # over the 100 ms budget in 2 of 5 rounds: noise
        ([30, 150, 120, 140, 25], False),  # over in 3 of 5: the model
    ],
)
def test_a_latency_budget_fails_only_when_most_rounds_break_it(params, p99, passed):
    deploy = params.deploy.model_copy(update={"max_p99_latency_ms": 100})
    figures = {"load_s": 1, "peak_memory_mb": 100, "rounds": rounds_of(p99)}
    latency = next(c for c in budget_checks(figures, deploy) if c.criterion == "infra.p99_latency_ms")
    assert latency.passed is passed
    assert latency.value == sorted(p99)[2] and latency.bound == 100  # the median round is reported
    assert f"range {min(p99)}..{max(p99)}" in latency.detail
    assert f"over the budget in {sum(v > 100 for v in p99)} of 5" in latency.detail
    assert f"waited for its core 25.0% of a round, clock p99 {2 * sorted(p99)[2]}" in latency.detail


def test_a_throughput_budget_fails_only_when_most_rounds_fall_under_it(params):
    deploy = params.deploy.model_copy(update={"min_throughput_rows_s": 5000})
    slow_twice = {
        "load_s": 1,
        "peak_memory_mb": 100,
        "rounds": rounds_of([1] * 5, [900, 8000, 7000, 800, 6000]),
    }
    slow_thrice = {
        "load_s": 1,
        "peak_memory_mb": 100,
        "rounds": rounds_of([1] * 5, [900, 8000, 700, 800, 6000]),
    }
    (ok,) = (c for c in budget_checks(slow_twice, deploy) if c.criterion == "infra.throughput_rows_s")
    (bad,) = (c for c in budget_checks(slow_thrice, deploy) if c.criterion == "infra.throughput_rows_s")
    assert ok.passed and ok.value == 6000 and "under the budget in 2 of 5" in ok.detail
    assert not bad.passed and bad.value == 900 and "range 700..8000" in bad.detail


def test_of_an_even_number_of_rounds_a_tie_goes_to_the_model_and_the_value_agrees(params):
    deploy = params.deploy.model_copy(update={"max_p99_latency_ms": 100})
    tie = {"load_s": 1, "peak_memory_mb": 100, "rounds": rounds_of([30, 150, 40, 140])}
    most = {"load_s": 1, "peak_memory_mb": 100, "rounds": rounds_of([130, 150, 40, 140])}
    (tied,) = (c for c in budget_checks(tie, deploy) if c.criterion == "infra.p99_latency_ms")
    (over,) = (c for c in budget_checks(most, deploy) if c.criterion == "infra.p99_latency_ms")
    assert tied.passed and tied.value == 40  # 2 of 4 over: not most; the value keeps the budget too
    assert not over.passed and over.value == 130


def test_the_champions_rounds_are_named_beside_the_challengers_as_information(params):
    deploy = params.deploy.model_copy(update={"max_p99_latency_ms": 100})
    figures = {
        "load_s": 1.0,
        "peak_memory_mb": 100,
        "rounds": rounds_of([150, 160, 170]),
        "champion": {"load_s": 0.5, "rounds": rounds_of([140, 150, 160])},
    }
    checks = {c.criterion: c for c in budget_checks(figures, deploy)}
    latency = checks["infra.p99_latency_ms"]
    assert not latency.passed  # the absolute budget decides, however slow the champion was too
    assert "champion 150, ratio 1.067" in latency.detail
    assert "champion 0.5, ratio 2.0" in checks["infra.load_s"].detail


def test_summarise_reports_medians_spread_and_ratios_to_the_champion():
    raw = {
        "load_s": 1.0,
        "peak_memory_mb": 100,
        "rounds": rounds_of([10, 30, 20], [100, 300, 200]),
        "champion": {"load_s": 2.0, "rounds": rounds_of([5, 15, 10], [400, 200, 300])},
    }
    figures = summarise(raw)
    assert figures["p99_latency_ms"] == 20 and figures["spread"]["p99_latency_ms"] == [10, 30]
    assert figures["throughput_rows_s"] == 200 and figures["champion"]["throughput_rows_s"] == 300
    assert figures["ratio_to_champion"] == {
        "load_s": 0.5,
        "p50_latency_ms": 2.0,
        "p99_latency_ms": 2.0,
        "throughput_rows_s": 0.667,
    }
    assert "ratio_to_champion" not in summarise({**raw, "champion": {"error": "KeyError: 'visib'"}})


def test_metric_checks_know_which_way_is_better():
    champ = {"roc_auc": 0.70, "log_loss": 0.50}
    tol = {"roc_auc": 0.01, "log_loss": 0.01}
    ok = metric_checks({"roc_auc": 0.695, "log_loss": 0.505}, champ, tol)
    assert all(c.passed for c in ok)
    bad = metric_checks({"roc_auc": 0.68, "log_loss": 0.52}, champ, tol)
    assert [c.criterion for c in bad if not c.passed] == ["metric.log_loss", "metric.roc_auc"]


def test_diff_check_passes_within_bound_or_with_a_recorded_override():
    assert diff_check(0.05, 0.1, "").passed
    refused = diff_check(0.2, 0.1, "")
    assert not refused.passed and refused.criterion == "diff.changed_share"
    overridden = diff_check(0.2, 0.1, "new carrier mix, reviewed by ops")
    assert overridden.passed and "override: new carrier mix" in overridden.detail


def test_decide_names_failed_criteria():
    assert gate_verdict([Check("a", 1, 2, True), Check("b", 3, 2, False)]) == (False, ["b"])
    assert gate_verdict([Check("a", 1, 2, True)]) == (True, [])


def test_the_gate_takes_the_early_probe_only_for_the_same_bytes_beside_the_same_champion():
    check = Check("infra.load_s", 0.1, 5, True)
    early = {"sha256": "abc", "champion": "1", "checks": [vars(check)], "figures": {"load_s": 0.1}}
    assert _early_checks(lambda: early, "abc", "1") == ([check], {"load_s": 0.1})
    assert _early_checks(lambda: early, "def", "1") is None  # the registered copy holds other bytes
    assert _early_checks(lambda: early, "abc", "2") is None  # the champion moved since (or failed to load)
    assert _early_checks(lambda: early, "abc", None) is None  # the gate measures the challenger alone
    assert _early_checks(lambda: None, "abc", "1") is None  # the early probe failed: the gate probes itself
    assert _early_checks(None, "abc", "1") is None


@pytest.mark.parametrize("planned", [1, 2, 3, 4, 5, 6])
def test_the_probe_stops_only_where_the_rounds_left_cannot_change_the_verdict(planned):
    """Every sequence of passing (10) and breaking (200) rounds against a 100 ms budget: where the probe
    stops (the first prefix majority_decided says is decided), the verdict on that prefix is the verdict on
    all the planned rounds, for every way the rounds left could have gone."""
    import itertools

    for full in itertools.product([10.0, 200.0], repeat=planned):
        stop = next(k for k in range(1, planned + 1) if majority_decided(list(full[:k]), planned, 100, False))
        on_prefix = round_check("p99", list(full[:stop]), 100, False, None, planned=planned)
        for rest in itertools.product([10.0, 200.0], repeat=planned - stop):
            whole = round_check("p99", [*full[:stop], *rest], 100, False, None)
            assert on_prefix.passed == whole.passed, (full, stop, rest)
    assert majority_decided([10.0] * 3, 5, 100, False) and not majority_decided([10.0] * 2, 5, 100, False)
    assert majority_decided([200.0] * 3, 5, 100, False) and not majority_decided(
        [10.0, 200.0, 200.0], 5, 100, False
    )


def test_the_probe_stops_when_every_budget_is_decided_and_says_so(params):
    rounds = rounds_of([10, 20, 30], [9000, 9000, 9000])
    budgets = {"p99_latency_ms": [100, False], "throughput_rows_s": [5000, True]}
    assert all_decided(rounds, 5, budgets) and not all_decided(rounds[:2], 5, budgets)
    assert not all_decided(rounds_of([10, 20, 30], [9000, 100, 100]), 5, budgets)  # throughput still open
    assert not all_decided(rounds, 5, {})  # without budgets: every planned round
    figures = {"load_s": 1, "peak_memory_mb": 100, "rounds": rounds, "rounds_planned": 5}
    latency = next(c for c in budget_checks(figures, params.deploy) if c.criterion == "infra.p99_latency_ms")
    assert latency.passed and "median of 3 rounds, the majority of 5 decided" in latency.detail
