"""What a monitoring pass says to a person (pure): the one result the flow returns (`MonitorResult`), its
verdict in a word, the Prefect summary in markdown and the lines `mlpipe monitor` prints."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlpipe.monitoring.new_data import NewData


@dataclass(frozen=True)
class RetrainRun:
    """The retrain flow a retrain verdict started: its final state's name, and its summary (the retrain
    result as a dict) or, when it failed, the state's message."""

    state: str
    summary: dict[str, Any] | str


@dataclass(frozen=True)
class MonitorResult:
    """One monitoring pass, step by step: `window` is the champion's window judged (figures and verdict, as
    monitoring.judge.judge_log gives them and the monitoring run's decision.json records them), then the
    MLflow monitoring run, what a retrain verdict found to train on (with its line) and the retrain it
    started, when it did."""

    window: dict[str, Any]
    monitoring_run_id: str
    new_data: NewData | None = None
    new_data_line: str | None = None
    retrain_run: RetrainRun | None = None

    @property
    def judged(self) -> bool:
        return bool(self.window["judged"])

    @property
    def retrain(self) -> bool:
        return bool(self.window["retrain"])

    @property
    def retire(self) -> bool:
        return bool(self.window["retire"])

    @property
    def reasons(self) -> list[str]:
        return list(self.window["reasons"])

    def as_dict(self) -> dict[str, Any]:
        """The pass as `mlpipe monitor --json` prints it: the window's keys, `monitoring_run_id`, and
        `new_data` (with its `line`) and `retrain_run` when there are."""
        out = {**self.window, "monitoring_run_id": self.monitoring_run_id}
        if self.new_data is not None:
            out["new_data"] = self.new_data.as_dict() | {"line": self.new_data_line}
        if self.retrain_run is not None:
            out["retrain_run"] = {"state": self.retrain_run.state, "summary": self.retrain_run.summary}
        return out

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> MonitorResult:
        """Back from `as_dict` (the data of the flow's Retire state is that dict, made JSON-safe)."""
        from mlpipe.monitoring.new_data import NewData

        window = dict(d)
        run_id = window.pop("monitoring_run_id")
        found, ran = window.pop("new_data", None), window.pop("retrain_run", None)
        return cls(
            window,
            run_id,
            NewData(found["waiting"], found["feedback"], found["period"], found["nothing"])
            if found
            else None,
            found["line"] if found else None,
            RetrainRun(ran["state"], ran["summary"]) if ran else None,
        )


def verdict_word(r: MonitorResult) -> str:
    """no verdict yet | RETIRE | retrain | retrain wanted, nothing new to train on | healthy."""
    if not r.judged:
        return "no verdict yet"
    if r.retire:
        return "RETIRE"
    if r.retrain:
        found = r.new_data
        return "retrain wanted, nothing new to train on" if found and not found.batches else "retrain"
    return "healthy"


def summary_markdown(r: MonitorResult) -> str:
    """The flow's `monitor-summary` artifact."""
    w = r.window
    lines = [
        f"# Monitor: {verdict_word(r)}",
        "",
        f"- champion run: {w['champion_run_id']}",
        f"- {w['champion']}",
        f"- rows in window: {w['rows_in_window']} (the champion's checked {w['rows_checked']}, read in "
        f"{w['read_s']} s)",
        f"- input drift share: {(w['input_drift'] or {}).get('drift_share')}",
        f"- prediction drifted: {bool((w['prediction_drift'] or {}).get('drift_share'))}",
        f"- live {w['metric']}: {(w['live_metrics'] or {}).get(w['metric'])} on {w['labels']} labels "
        f"(training {w['training_metric']})",
        f"- MLflow monitoring run: {r.monitoring_run_id}",
        "",
    ]
    lines += [f"- reason: {x}" for x in r.reasons] or ["- no reason to act"]
    lines += [f"- {x}" for x in w["version_lines"]]
    lines += [f"- {r.new_data_line}"] if r.new_data is not None else []
    return "\n".join(lines) + "\n"


def summary_lines(r: MonitorResult) -> list[str]:
    """What `mlpipe monitor` prints."""
    w = r.window
    lines = [
        f"mlpipe monitor: {verdict_word(r)}; {w['rows_in_window']} rows in window, input drift share "
        f"{(w['input_drift'] or {}).get('drift_share')}, live {w['metric']} "
        f"{(w['live_metrics'] or {}).get(w['metric'])} on {w['labels']} labels",
        f"  {w['champion']}",
    ]
    lines += [f"  reason: {reason}" for reason in r.reasons]
    lines += [f"  {line}" for line in w["version_lines"]]
    lines += [f"  {r.new_data_line}"] if r.new_data is not None else []
    lines += [f"  retrain flow: {r.retrain_run.state}"] if r.retrain_run is not None else []
    return lines
