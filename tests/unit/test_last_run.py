"""The no-op answer's record (`.mlpipe/last_run.json`): what the flow keeps, what it never keeps, and that a
record the preflight cannot trust is no record at all (the flow then decides)."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest

from mlpipe.config import ProjectPaths
from mlpipe.flows.common import RunSummary
from mlpipe.flows.preflight import _read_record, forget_run, remember_run


def summary(**changes) -> RunSummary:
    base = RunSummary(
        verdict="trained a new model",
        accepted=["batch-2013-04-01.parquet"],
        quarantined=[],
        quarantine_reports=[],
        rows_accepted=100,
        data_before="a.dir",
        data_after="b.dir",
        commit="c0ffee",
        git_dirty=False,
        stages_run=["train"],
        trained=True,
        run_id="r1",
        already_recorded=False,
        model_name="m",
        model_version="3",
        aliases=["champion"],
        model_sha256="ab" * 32,
        metrics={"roc_auc": 0.7},
        drift_share=0.1,
        tracking_uri="http://127.0.0.1:5000",
        gate_decision="promoted",
    )
    return replace(base, **changes)


def test_a_judged_run_is_remembered_at_its_commit_and_read_back_whole(tmp_path):
    paths = ProjectPaths(tmp_path)
    remember_run(paths, summary())
    record = _read_record(paths)
    assert record["commit"] == "c0ffee" and RunSummary(**record["summary"]) == summary()
    forget_run(paths)
    assert _read_record(paths) is None and not paths.last_run.exists()


@pytest.mark.parametrize(
    "kind",
    [
        {"git_dirty": True},  # an experiment from uncommitted changes
        {"model_version": "unregistered"},
        {"gate_decision": None},  # registered but never judged: the flow finishes the job
    ],
)
def test_a_run_that_is_not_the_whole_story_is_never_remembered_and_drops_the_old_record(tmp_path, kind):
    paths = ProjectPaths(tmp_path)
    remember_run(paths, summary())
    remember_run(paths, summary(**kind))
    assert _read_record(paths) is None


@pytest.mark.parametrize(
    "text",
    [
        "not json",
        json.dumps({"record_version": 0, "commit": "c", "tracking_uri": "u", "summary": {}}),
        json.dumps({"record_version": 2, "commit": "c", "tracking_uri": "u", "summary": {"bogus": 1}}),
        json.dumps({"record_version": 2, "commit": "c", "tracking_uri": "u", "summary": {}}),
        json.dumps([1, 2]),
    ],
)
def test_a_record_from_another_version_or_broken_is_no_record(tmp_path, text):
    paths = ProjectPaths(tmp_path)
    paths.last_run.parent.mkdir(parents=True)
    paths.last_run.write_text(text)
    assert _read_record(paths) is None
