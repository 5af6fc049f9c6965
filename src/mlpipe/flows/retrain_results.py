"""What retrain's steps hand each other (frozen, typed: no dicts between steps) and the verdict line made from
them, a pure function."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # both import MLflow's neighbours (~3 s): the flow module stays quick to import
    from pathlib import Path

    from mlpipe.data.landing import BatchVerdict
    from mlpipe.registry.tracking import RunRecord
    from mlpipe.release.gate import GateDecision


@dataclass(frozen=True)
class BatchesTaken:
    """The snapshot task's answer: data.dvc's md5 around it, the commit, the data/ files of the batches taken
    in (not those already held), one note a batch (and its flags), and their rows."""

    before: str | None = None
    after: str | None = None
    commit: str | None = None
    batches: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    rows: int = 0


@dataclass(frozen=True)
class IngestResult:
    """data/ as the stages will read it: the initial files a bootstrap recorded, the notes of files put back,
    the batches accepted and quarantined, what was taken in, data.dvc's md5 before and after, and the newest
    batch taken in (what drift compares; None: no batch drift)."""

    initial: list[str]
    restored: list[str]
    accepted: list[BatchVerdict]
    quarantined: list[str]
    taken: BatchesTaken
    before: str | None
    after: str | None
    newest: Path | None

    @property
    def set_aside_rows(self) -> int:
        return sum(v.set_aside_rows for v in self.accepted)


@dataclass(frozen=True)
class StagesResult:
    """Each stage's outcome, in pipeline order: "ran", "restored" or "skipped"."""

    outcomes: dict[str, str]

    @property
    def ran(self) -> list[str]:
        return [name for name, outcome in self.outcomes.items() if outcome == "ran"]

    @property
    def trained(self) -> bool:
        return "train" in self.ran


@dataclass(frozen=True)
class Recorded:
    """The record step: the MLflow run, its drift summary (drift_share, drifted_columns, note) and the
    champion before the run."""

    record: RunRecord
    drift: dict
    champion_before: str | None


@dataclass(frozen=True)
class Registration:
    """The model version of the run (or "unregistered") and its aliases."""

    version: str
    aliases: list[str] = field(default_factory=list)


UNREGISTERED = Registration("unregistered")


@dataclass(frozen=True)
class Judgement:
    """The judge step: the version registered and the gate's decision on it."""

    registration: Registration
    gate: GateDecision


def not_registered(record: RunRecord, experiment: bool) -> str:
    """Why the run gets no version ("" when it does): nothing unreproducible is registered."""
    if experiment or record.git_dirty or record.unpinned:
        return record.unpinned or "trained from uncommitted changes (an experiment)"
    return ""


def verdict_text(
    stages: StagesResult,
    already_recorded: bool,
    quarantined: int,
    set_aside: int,
    quarantine_dir: str,
    experiment: bool,
) -> str:
    """The run's verdict line: what it trained (or why not), the batches quarantined, the rows set aside."""
    ran = stages.ran
    if stages.trained:
        verdict = "trained a new model"
    elif stages.outcomes["train"] == "restored":  # e.g. trained by a run interrupted after train
        verdict = f"model restored from DVC's run-cache, trained before (reran {', '.join(ran) or 'nothing'})"
    elif ran:
        verdict = f"model unchanged (reran {', '.join(ran)}; the training inputs are identical)"
    elif already_recorded:
        verdict = "nothing to train (no new data, no code or param change)"
    else:  # the outputs were up to date but never recorded: say so, not "nothing to train"
        verdict = (
            "no stage reran; recorded the model that was built but not yet recorded "
            "(by `dvc repro`, or by a run that was interrupted)"
        )
    if quarantined:
        verdict += f"; {quarantined} batch(es) quarantined"
    if set_aside:
        verdict += f"; {set_aside} row(s) set aside in {quarantine_dir}/"
    if experiment:
        verdict = f"experiment: {verdict} (uncommitted changes: recorded in MLflow, never registered)"
    return verdict


def outcome_state(
    decision: str | None,
    version: str,
    failed: str = "",
    quarantined: int = 0,
    already_decided: bool = False,
) -> tuple[str, str]:
    """(name, message) of the flow run's final Completed state (pure): the Prefect UI shows the name on the
    run's badge, so a promotion and a kept champion differ at a glance, and the message says why (`failed`:
    the failed criteria in numbers, infra.failed_brief). A run that quarantined a batch is `Quarantined`
    whatever the gate said: the batch needs a person first."""
    decision = decision or "not judged"
    if quarantined:
        name = "Quarantined"
    elif already_decided:
        name = "Judged before"
    elif decision.startswith("promoted"):
        name = "Promoted"
    elif decision.startswith("kept champion"):
        name = "Kept champion"
    elif decision.startswith("not registered"):
        name = "Not registered"
    else:
        name = "Not promoted"
    about = f"version {version}: {decision}" if version != UNREGISTERED.version else decision
    if already_decided:
        about = f"version {version} was judged before: {decision}"
    message = about + (f"; failed {failed}" if failed else "")
    if quarantined:
        message += f"; {quarantined} batch(es) quarantined"
    return name, message
