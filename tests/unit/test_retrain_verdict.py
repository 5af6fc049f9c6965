"""The run's verdict line says what the stages did (trained, restored, reran without training, nothing, or
recorded a model built outside a run), then the batches quarantined and rows set aside; an experiment says
so."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from mlpipe.flows.retrain_results import StagesResult, not_registered, verdict_text

STAGES = ("validate", "split", "train", "evaluate")


def stages(**outcomes: str) -> StagesResult:
    return StagesResult({name: outcomes.get(name, "skipped") for name in STAGES})


@pytest.mark.parametrize(
    ("result", "already_recorded", "expected"),
    [
        (stages(split="ran", train="ran", evaluate="ran"), False, "trained a new model"),
        (
            stages(train="restored", evaluate="ran"),
            False,
            "model restored from DVC's run-cache, trained before (reran evaluate)",
        ),
        (
            stages(train="restored"),
            True,
            "model restored from DVC's run-cache, trained before (reran nothing)",
        ),
        (
            stages(validate="ran", split="ran"),
            True,
            "model unchanged (reran validate, split; the training inputs are identical)",
        ),
        (stages(), True, "nothing to train (no new data, no code or param change)"),
        (
            stages(),
            False,
            "no stage reran; recorded the model that was built but not yet recorded "
            "(by `dvc repro`, or by a run that was interrupted)",
        ),
    ],
)
def test_the_verdict_says_what_the_stages_did(result, already_recorded, expected):
    assert verdict_text(result, already_recorded, 0, 0, "quarantine", False) == expected


def test_quarantined_batches_and_rows_set_aside_follow_and_an_experiment_says_it_is_one():
    line = verdict_text(stages(train="ran"), False, 2, 7, "quarantine", True)
    assert line == (
        "experiment: trained a new model; 2 batch(es) quarantined; 7 row(s) set aside in quarantine/ "
        "(uncommitted changes: recorded in MLflow, never registered)"
    )


def test_only_a_committed_pinned_run_is_registered():
    def record(git_dirty=False, unpinned=""):
        return SimpleNamespace(git_dirty=git_dirty, unpinned=unpinned)

    assert not_registered(record(), experiment=False) == ""
    assert not_registered(record(), experiment=True) == "trained from uncommitted changes (an experiment)"
    assert not_registered(record(git_dirty=True), experiment=False).startswith("trained from uncommitted")
    assert not_registered(record(unpinned="mlpipe 0.9 is not the pinned 1.0"), False) == (
        "mlpipe 0.9 is not the pinned 1.0"
    )
