"""What a retrain verdict has to train on. A retrain with no new rows trains nothing, so before the retrain
flow starts, the monitor brings in what is new: the labelled traffic not landed before (when
monitor.feedback_as_batch allows it), and, for a source with a time column, the source's next period once it
has ended (only when no batch is waiting already: the monitor never runs ahead of the retrains). With
nothing new it says so, and no retrain starts."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

import pandas as pd

from mlpipe.config import Params, ProjectPaths


@dataclass(frozen=True)
class NewData:
    """The batches a retrain would take in: `waiting` before this pass, `feedback` and `period` landed by it,
    and for each route that brought nothing, why (`nothing`)."""

    waiting: list[str] = field(default_factory=list)
    feedback: list[str] = field(default_factory=list)
    period: str | None = None
    nothing: list[str] = field(default_factory=list)

    @property
    def batches(self) -> list[str]:
        return [*self.waiting, *self.feedback, *([self.period] if self.period else [])]

    def line(self, wanted: str) -> str:
        """What the retrain will take in, or why none starts."""
        if not self.batches:
            return f"retrain wanted ({wanted}) but nothing new to train on: {', '.join(self.nothing)}"
        landed = [*self.feedback, *([self.period] if self.period else [])]
        said = [f"{len(self.waiting)} batch(es) waiting"] if self.waiting else []
        said += [f"landed {', '.join(landed)}"] if landed else []
        return f"retrain ({wanted}) on new data: {'; '.join(said)}"

    def as_dict(self) -> dict:
        return {
            "waiting": self.waiting,
            "feedback": self.feedback,
            "period": self.period,
            "nothing": self.nothing,
            "batches": self.batches,
        }


def period_ended(end: date, today: date) -> bool:
    """A period [start, end) has all its rows once `end` is past (today UTC is on or after it)."""
    return today >= end


def land_new_data(paths: ProjectPaths, params: Params, log_url: str, today: date | None = None) -> NewData:
    """Bring in what a retrain verdict has to train on (see the module); `today` (UTC) decides whether the
    source's next period has ended."""
    from mlpipe.data.landing import landed_batches

    landing = paths.root / params.retrain.landing_dir
    waiting = [p.name for p in landed_batches(landing)]
    feedback, no_traffic = _labelled_traffic(paths, params, log_url)
    period, no_period = None, None
    if not waiting and params.dataset.periodic:
        period, no_period = _next_period(paths, params, today or pd.Timestamp.now(tz="UTC").date())
    nothing = [*no_traffic, *([] if waiting else ["no batch waiting"]), *([no_period] if no_period else [])]
    return NewData(waiting, feedback, period, nothing)


def _labelled_traffic(paths: ProjectPaths, params: Params, log_url: str) -> tuple[list[str], list[str]]:
    """(feedback batches landed, [why none]) as monitor.feedback_as_batch says."""
    from mlpipe.monitoring.feedback_batch import count_not_landed, land_feedback

    if not params.monitor.feedback_as_batch:
        n = count_not_landed(log_url)
        unused = f"{n:,} labelled logged rows not used (monitor.feedback_as_batch: false)"
        return [], [unused if n else "no labelled traffic"]
    batches = land_feedback(
        log_url,
        params,
        paths.root / params.retrain.landing_dir,
        paths.data,
        paths.root / params.retrain.quarantine_dir,
    )
    return [b.path.name for b in batches], [] if batches else ["no new labelled traffic"]


def _next_period(paths: ProjectPaths, params: Params, today: date) -> tuple[str | None, str | None]:
    """(the batch of the source's next period landed, else None and why not)."""
    from mlpipe.data.frames import next_period
    from mlpipe.data.landing import release_next_period, source_position
    from mlpipe.data.sources import get_source

    landing = paths.root / params.retrain.landing_dir
    latest = source_position(paths.data, landing, params)
    if latest is None:
        return None, "no time to continue the source from"
    start, end = next_period(latest, params.dataset.batch_freq)
    if not period_ended(end, today):
        return None, f"the source's next period {start}..{end} has not ended"
    dest = release_next_period(
        get_source(params, paths.root),
        latest,
        params.dataset.time_column,
        params.dataset.batch_freq,
        landing,
    )
    if dest is None:
        return None, f"no rows in the source's next period {start}..{end}"
    return dest.name, None
