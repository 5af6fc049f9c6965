"""What the flows share, kept free of Prefect imports (the CLI's no-op path reads it without starting
Prefect): the project a flow works on, and the typed summary of a retrain run with its two renderings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from mlpipe.config import PARAMS_FILE, Params, ProjectPaths, headline_of, load_params, lower_is_better
from mlpipe.registry import views
from mlpipe.release.infra import failed_lines

# A run that takes in no batch (a params-only change, a rerun) has no batch drift: it reports none, never
# the last batch's again.
NO_BATCH_DRIFT = "no new batch: no batch drift"


def setup(root: str) -> tuple[ProjectPaths, Params]:
    """The project at `root` (resolved) and its validated params.yaml."""
    paths = ProjectPaths(Path(root).resolve())
    return paths, load_params(paths.root / PARAMS_FILE)


@dataclass(frozen=True)
class RunSummary:
    """What one retrain pass did: batches, data hashes, stages, the MLflow run, the version and the gate."""

    verdict: str
    accepted: list[str]  # batch file names taken into data/
    quarantined: list[str]
    quarantine_reports: list[str]
    rows_accepted: int
    data_before: str | None  # data.dvc md5 before and after the snapshot
    data_after: str | None
    commit: str | None
    git_dirty: bool
    stages_run: list[str]
    trained: bool
    run_id: str
    already_recorded: bool
    model_name: str
    model_version: str
    aliases: list[str]
    model_sha256: str
    metrics: dict
    drift_share: float | None
    tracking_uri: str
    gate_decision: str | None
    gate_failed: list[str] = field(default_factory=list)
    gate_checks: list[dict] = field(default_factory=list)
    champion: str | None = None
    champion_before: str | None = None
    metric_rows: list[dict] = field(default_factory=list)
    run_link: str = ""
    runs_link: str = ""  # the experiment's run table in mlpipe's saved view (headline metrics as columns)
    # per accepted batch: rows taken, rows set aside (rules, file in quarantine/), rows flagged outside the
    # training range
    batch_notes: list[str] = field(default_factory=list)
    positive_class: str | int | None = (
        None  # binary: the class the metrics are about (dataset.positive_class)
    )
    drift_note: str = ""  # what drift_share compares ("<batch> vs N training rows before <t>"), or why none
    estimator: str = ""  # what train.estimator auto chose and on what scores (selection.selection_line)
    # files of data/ put back as data.dvc records them (deleted or edited by hand), landing files an
    # interrupted run had committed: one line each
    data_notes: list[str] = field(default_factory=list)
    gate_already_decided: bool = False  # the version was judged before: its decision stands

    @property
    def drift_line(self) -> str:
        """The drift share with what it compares, or why there is none."""
        return f"{self.drift_share} ({self.drift_note or 'newest batch vs training data'})"

    def as_dict(self) -> dict:
        return asdict(self)


def metric_rows(metrics: dict, champion: dict | None) -> list[dict]:
    """The headline metrics of this run beside the champion's on the same rows (the gate's figures), so
    "change" is one truth with the gate table; without such figures the champion column stays empty: its
    recorded metrics were measured on another test set and would compare different rows."""
    rows = []
    for name in headline_of(metrics):
        champ = champion.get(name) if champion else None
        change = round(metrics[name] - champ, 6) if champ is not None else None
        rows.append(
            {
                "metric": name,
                "value": metrics[name],
                "champion": champ,
                "change": change,
                "direction": direction(name, change),
            }
        )
    return rows


NOT_A_SCORE = {"n_test"}  # a count of rows: neither better nor worse


def direction(metric: str, change: float | None) -> str:
    """`better`, `worse` or `same` for a change of `metric` against the champion, by the metric's own sense
    (log_loss, rmse: lower is better), or "" without a comparison (pure)."""
    if change is None or metric in NOT_A_SCORE:
        return ""
    if change == 0:
        return "same"
    return "better" if (change < 0) == lower_is_better(metric) else "worse"


def run_link(tracking_uri: str, experiment_id: str, run_id: str) -> str:
    """Where a person opens the run (in the UI's model-training view: registry.views): the tracking
    server's own page when there is one, else the path `mlpipe ui` serves (on whatever port it is started)."""
    return ui_link(tracking_uri, views.run_page(experiment_id, run_id))


def runs_link(tracking_uri: str, experiment_id: str) -> str:
    """Where a person opens the experiment's run table with the task's headline metrics as columns."""
    return ui_link(tracking_uri, views.runs_page(experiment_id))


LOCAL_UI = "http://127.0.0.1:5000"  # where `mlpipe ui` serves the MLflow UI unless told another port
LOCAL_LINK = "`mlpipe ui`, then /"


def ui_link(tracking_uri: str, page: str) -> str:
    if tracking_uri.startswith(("http://", "https://")):
        return f"{tracking_uri.rstrip('/')}/{page}"
    return f"{LOCAL_LINK}{page}"


def markdown_link(label: str, link: str) -> str:
    """A link of the summary as Markdown a page makes clickable: the tracking server's address, or, for a
    local store, the address `mlpipe ui` serves by default (it answers while `mlpipe ui` runs) (pure)."""
    if link.startswith(LOCAL_LINK):
        page = link.removeprefix(LOCAL_LINK)
        return f"[{label}]({LOCAL_UI}/{page}) (while `mlpipe ui` runs; on another port, the same path)"
    if link.startswith(("http://", "https://")):
        return f"[{label}]({link})"
    return link


def render_text(s: RunSummary) -> str:
    """The summary `mlpipe run` prints."""
    metrics = ", ".join(f"{k}={s.metrics[k]}" for k in headline_of(s.metrics))
    lines = [
        f"mlpipe run: {s.verdict}"
        + (" (this commit, data and model were already recorded)" if s.already_recorded else ""),
        (
            f"  batches:       accepted {', '.join(s.accepted) or 'none'}; "
            f"quarantined {', '.join(s.quarantined) or 'none'}"
        ),
        *(f"  taken:         {note}" for note in s.batch_notes),
        *(f"  {note}" for note in s.data_notes),
        f"  data md5:      {s.data_before} -> {s.data_after}",
        f"  stages run:    {', '.join(s.stages_run) or 'none (outputs up to date)'}",
        f"  mlflow run:    {s.run_id}",
        f"  model:         {s.model_name} version {s.model_version} [{', '.join(s.aliases) or 'no alias'}]"
        f" (sha256 {s.model_sha256[:16]}...)",
        *([f"  estimator:     {s.estimator}"] if s.estimator else []),
        f"  metrics:       {metrics}"
        + (f" (positive class {s.positive_class!r})" if s.positive_class is not None else ""),
        f"  drift share:   {s.drift_line}",
        *vs_baseline(s.metrics),
        *vs_champion(s.metric_rows),
        f"  gate:          {s.gate_decision or 'not judged'}"
        + (f" (failed: {', '.join(s.gate_failed)})" if s.gate_failed else "")
        + (f"; champion is version {s.champion}" if s.champion else ""),
        *(f"    FAILED {line}" for line in failed_lines(s.gate_checks)),
        f"  git commit:    {s.commit}{' (dirty tree)' if s.git_dirty else ''}",
        f"  tracking:      {s.tracking_uri}",
        *ui_lines(s),
    ]
    lines += [f"  QUARANTINED:   {report}" for report in s.quarantine_reports]
    return "\n".join(lines)


def ui_lines(s: RunSummary) -> list[str]:
    """Where to look: the run's page and the run table with the headline metrics (on a tracking server its
    own addresses; with a local store the pages `mlpipe ui` serves, on whatever port it is started)."""
    if not s.run_link:
        return ["  open the UI:   mlpipe ui"]
    return [f"  run page:      {s.run_link}", *([f"  runs table:    {s.runs_link}"] if s.runs_link else [])]


def vs_baseline(metrics: dict) -> list[str]:
    """Each headline metric beside the trivial model's on the same rows (metrics.json baseline.<metric>)."""
    shown = [
        f"{k} {metrics[k]} vs {metrics[f'baseline.{k}']}"
        for k in headline_of(metrics)
        if f"baseline.{k}" in metrics
    ]
    return [f"  vs baseline:   {', '.join(shown)} (the trivial model: train prior / mean)"] if shown else []


def vs_champion(rows: list[dict]) -> list[str]:
    """The change of each headline metric against the champion on the same rows, when it was compared."""
    shown = [
        f"{r['metric']} {r['change']:+}"
        + (f" ({way})" if (way := direction(r["metric"], r["change"])) else "")
        for r in rows
        if r["change"] is not None
    ]
    return [f"  vs champion:   {', '.join(shown)} (the gate's rows)"] if shown else []


def change_cell(row: dict) -> str:
    """A change against the champion with its sense: `-0.012 (better: lower is better)` (pure)."""
    if row["change"] is None:
        return "-"
    way = row.get("direction") or direction(row["metric"], row["change"])
    if not way:
        return f"{row['change']:+}"
    sense = "lower is better" if lower_is_better(row["metric"]) else "higher is better"
    return f"{row['change']:+} ({way}: {sense})"


def render_markdown(s: RunSummary) -> str:
    """The summary as the Prefect artifact `retrain-summary`."""
    lines = [
        f"# Retrain: {s.verdict}",
        "",
        f"- batches accepted: {', '.join(s.accepted) or 'none'}",
        f"- batches quarantined: {', '.join(s.quarantined) or 'none'}",
        f"- rows accepted: {s.rows_accepted}",
        *(f"- {note}" for note in [*s.batch_notes, *s.data_notes]),
        f"- data md5: {s.data_before} -> {s.data_after}",
        f"- commit: {s.commit}{' (dirty tree)' if s.git_dirty else ''}",
        f"- stages run: {', '.join(s.stages_run) or 'none (DVC: everything up to date)'}",
        f"- MLflow run: {markdown_link('the run page', s.run_link)}",
        *([f"- MLflow runs: {markdown_link('the runs table', s.runs_link)}"] if s.runs_link else []),
        f"- model: {s.model_name} version {s.model_version} ({', '.join(s.aliases) or 'no alias'})",
        *([f"- estimator: {s.estimator}"] if s.estimator else []),
        f"- drift share: {s.drift_line}",
        f"- gate: {s.gate_decision}" + (f" (failed: {', '.join(s.gate_failed)})" if s.gate_failed else ""),
        *(f"  - FAILED {line}" for line in failed_lines(s.gate_checks)),
        *(f"- {line.strip()}" for line in vs_baseline(s.metrics)),
        "",
        "| metric | this run | champion (same rows as the gate) | change |",
        "|---|---|---|---|",
    ]
    lines += [f"| {r['metric']} | {r['value']} | {r['champion']} | {change_cell(r)} |" for r in s.metric_rows]
    if s.gate_checks:
        lines += ["", "| criterion | value | bound | verdict |", "|---|---|---|---|"]
        lines += [
            (
                f"| {c['criterion']} | {c['value']} | {c['bound']} | "
                f"{'pass' if c['passed'] else 'FAIL'} {c['detail']} |"
            )
            for c in s.gate_checks
        ]
    return "\n".join(lines) + "\n"
