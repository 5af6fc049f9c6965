"""The retraining flow: landed batches -> validated -> snapshot (DVC + git) -> DVC stages -> MLflow
run -> drift report -> registered challenger. The engine behind `mlpipe run` and `mlpipe schedule`."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING

from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import INPUTS, NO_CACHE, TASK_SOURCE
from prefect.states import Completed
from prefect.tasks import exponential_backoff

from mlpipe.config import params_hash
from mlpipe.data import landing, recorded
from mlpipe.data import snapshot as snap
from mlpipe.data.frames import data_files, read_frame
from mlpipe.data.validation import Violation
from mlpipe.errors import (
    ConfigError,
    DataError,
    DeployBudgetExceeded,
    MissingInput,
    ModelRefused,
    PromotionRefused,
    StageFailed,
)
from mlpipe.flows.common import (
    NO_BATCH_DRIFT,
    RunSummary,
    metric_rows,
    render_markdown,
    run_link,
    runs_link,
    setup,
)
from mlpipe.flows.preflight import remember_run
from mlpipe.flows.retrain_results import (
    UNREGISTERED,
    BatchesTaken,
    IngestResult,
    Judgement,
    Recorded,
    Registration,
    StagesResult,
    not_registered,
    outcome_state,
    verdict_text,
)
from mlpipe.flows.runner import StoppingTaskRunner
from mlpipe.monitoring.drift import batch_to_compare
from mlpipe.pipeline import layout
from mlpipe.pipeline.selection import read_selection, selection_line
from mlpipe.registry.aliases import aliases_of
from mlpipe.registry.client import mlflow_client
from mlpipe.release.infra import failed_brief
from mlpipe.runtime.git import git_changed_paths, git_commit_paths, require_clean_tree
from mlpipe.runtime.hashing import sha256_file
from mlpipe.runtime.lock import project_lock
from mlpipe.runtime.lockfiles import dvc_file_md5
from mlpipe.runtime.logs import event
from mlpipe.runtime.run_marker import clear_run_marker, mark_run_writing, restore_interrupted_run

if TYPE_CHECKING:  # MLflow's neighbours (~3 s to import): the tasks import them when they run
    from mlpipe.registry.tracking import RunRecord
    from mlpipe.release.gate import GateDecision

STAGES = tuple(layout.STAGES)  # the pipeline's stages, in order (pipeline.layout: the one list)
PIPELINE_OUTPUTS = ["dvc.lock", "metrics.json"]
RUN_WRITES = [snap.DATA_DVC, *PIPELINE_OUTPUTS]  # what an interrupted run may leave uncommitted


def retry_only_transient(task, task_run, state) -> bool:
    """Prefect's retry_condition_fn: a deterministic failure (bad config, bad data, a source that raises,
    a refused model) fails at once with its one line; anything else (I/O, a busy store) is retried."""
    return not isinstance(getattr(state, "data", None), DETERMINISTIC)


DETERMINISTIC = (ConfigError, DataError, MissingInput, ModelRefused, PromotionRefused)
TRANSIENT = {
    "retries": 3,
    "retry_condition_fn": retry_only_transient,
    "retry_delay_seconds": exponential_backoff(backoff_factor=2),
    "retry_jitter_factor": 0.5,
}


def describe_period(params) -> str:
    period = params.dataset.initial_period
    return f"period {period.start}..{period.end}" if period else f"rows of {params.dataset.source}"


@task(name="bootstrap", timeout_seconds=1800, **TRANSIENT)
def bootstrap_task(root: str) -> list[str]:
    """data/ restored or materialised, snapshot and committed; returns the data files when this run recorded
    them (the initial data, taken in as batches are), [] when data.dvc already held them (a fresh clone)."""
    paths, params = setup(root)
    md5 = snap.bootstrap(paths, params)
    commit = git_commit_paths(
        paths.root,
        [snap.DATA_DVC, ".gitignore"],
        f"data: initial {describe_period(params)} (md5 {md5})",
    )
    return [str(p) for p in data_files(paths.data)] if commit else []


@task(name="collect", timeout_seconds=60)
def collect(root: str) -> list[str]:
    paths, params = setup(root)
    found = [str(p) for p in landing.landed_batches(paths.root / params.retrain.landing_dir)]
    event("collected", batches=len(found))
    return found


def _batch_task_name() -> str:
    """validate_batch-<file name>: the batch, not the machine's absolute path to it."""
    from prefect.runtime import task_run

    return f"validate_batch-{Path(task_run.parameters['path']).name}"


@task(name="validate_batch", timeout_seconds=900, task_run_name=_batch_task_name)
def validate_batch(root: str, path: str) -> landing.BatchVerdict:
    """Check one landed batch against the retrain limits, data/'s column types, the schema, the training
    profile and the rows already in data/, a chunk at a time (landing.check_landed)."""
    paths, params = setup(root)
    batch_path = Path(path)
    profile = json.loads(paths.profile.read_text()) if paths.profile.exists() else {}
    try:
        verdict = landing.check_landed(batch_path, params, profile, paths.data)
    except Exception as exc:  # an unreadable file is a bad batch, not a crashed flow
        violation = Violation("<file>", f"unreadable: {type(exc).__name__}: {exc}", 0, (), batch_path.name)
        verdict = landing.BatchVerdict(batch_path, 0, [violation])
    event(
        "batch_checked",
        batch=batch_path.name,
        rows=verdict.rows,
        violations=len(verdict.violations),
        set_aside=verdict.set_aside_rows,
        flagged=len(verdict.flagged),
        warnings=len(verdict.warnings),
    )
    return verdict


@task(name="quarantine", timeout_seconds=120)
def quarantine_batch(root: str, v: landing.BatchVerdict) -> str:
    paths, params = setup(root)
    dest = landing.quarantine(v.path, paths.root / params.retrain.quarantine_dir, v)
    event(
        "quarantined",
        batch=v.path.name,
        to=dest,
        rules="; ".join(x.message() for x in v.violations)[:500],
        level=30,
    )
    return str(dest)


@task(name="snapshot", timeout_seconds=1800, **TRANSIENT)
def snapshot_task(root: str, verdicts: list[landing.BatchVerdict]) -> BatchesTaken:
    """Append accepted batches (validate_batch's verdicts) to data/ under names no other batch holds, their
    rows set aside to quarantine/, dvc add + push, commit data.dvc naming what went in; only then consume
    the landing files whose rows are proven in the commit, and move out of quarantine/ the copies of batches
    of the same names quarantined before (a fixed batch re-ingested)."""
    paths, params = setup(root)
    qdir = paths.root / params.retrain.quarantine_dir
    before = dvc_file_md5(paths.root / snap.DATA_DVC)
    taken = landing.take_batches(verdicts, params, paths.data, qdir)
    notes = []
    for verdict, batch in zip(verdicts, taken, strict=True):
        line = landing.describe_taken(verdict, batch, params.retrain.quarantine_dir)
        event("batch_taken", logging.WARNING if batch.set_aside else logging.INFO, note=line)
        notes += [line, *(f"{verdict.path.name}: {flag}" for flag in verdict.flagged)]
    after = snap.snapshot_data(paths)
    commit = git_commit_paths(paths.root, [snap.DATA_DVC, ".gitignore"], snap.added_message(taken, after))
    notes += recorded.consume_landed(paths, params, taken, after)  # only rows proven in the commit
    return BatchesTaken(
        before=before,
        after=after,
        commit=commit,
        batches=[t.data_file.name for t in taken if not t.same_as],
        notes=notes,
        rows=sum(t.rows for t in taken if not t.same_as),
    )


@task(name="stage", timeout_seconds=3600, task_run_name="stage-{name}")
def stage_task(root: str, name: str) -> str:
    """One stage through DVC's own `repro --single-item` logic (skip when unchanged, run-cache restore,
    dvc.lock update), its body run in this process: "ran", "restored" or "skipped"."""
    from mlpipe.pipeline.runner import reproduce_stage

    try:
        return reproduce_stage(Path(root), name)
    except StageFailed as exc:
        raise StageFailed(f"{exc}\nnothing was recorded or registered") from None


@task(name="commit_outputs", timeout_seconds=120)
def commit_outputs(root: str, data_md5: str) -> str | None:
    """Commit dvc.lock/metrics.json when they are the only changes, so the run is recorded against a
    clean commit; with other uncommitted changes the tree stays dirty and the run says so."""
    paths, _ = setup(root)
    changed = git_changed_paths(paths.root)
    if not changed or not changed <= set(PIPELINE_OUTPUTS):
        return None
    return git_commit_paths(paths.root, PIPELINE_OUTPUTS, f"pipeline: outputs for data md5 {data_md5}")


@task(name="track", timeout_seconds=900, **TRANSIENT)
def track(root: str, tracking_uri: str, experiment: bool = False, started_ms: int | None = None) -> RunRecord:
    """The MLflow run of the pipeline, started when the flow started (its duration is the pipeline's)."""
    from mlpipe.registry.tracking import track_run

    paths, params = setup(root)
    return track_run(paths, params, tracking_uri, experiment, started_ms)


# Submitted tasks run in worker threads, where Prefect's timeout cannot interrupt them (it only warns):
# they carry none, and the flow bounds its wait for their results instead (SUBMITTED_WAIT_S).
SUBMITTED_WAIT_S = {"champion": 300, "drift": 1800, "probe": 900, "plots_template": 300}


@task(name="plots-template", cache_policy=NO_CACHE)
def plots_template(root: str) -> str:
    """The page template of plain `dvc plots show` / `dvc plots diff` (vega inlined: they render offline),
    .dvc/tmp/mlpipe-plots.html named in .dvc/config.local, both git-ignored: written when missing or stale,
    in a process of its own, beside the stages. Never fails the run: a failure is one warning line."""
    from mlpipe.runtime.offline_plots import ensure_offline_template_apart, template_path

    t0 = time.perf_counter()
    try:
        written = ensure_offline_template_apart(Path(root), timeout_s=SUBMITTED_WAIT_S["plots_template"])
    except Exception as exc:  # noqa: BLE001 - a page template is never worth a failed run
        reason = " ".join(str(exc).split())[-300:]
        event("plots_template_failed", logging.WARNING, error=type(exc).__name__, reason=reason)
        return "failed"
    if written:
        path = template_path(Path(root))
        event("plots_template_written", path=path, duration_s=round(time.perf_counter() - t0, 3))
    return "written" if written else "current"


def wait_plots_template(future) -> None:
    """The plots-template task's end, waited for before the flow ends; it logs its own failure, this only
    what it could not (still running at the bound, or failed in Prefect's hands)."""
    try:
        found = future.result(timeout=SUBMITTED_WAIT_S["plots_template"], raise_on_failure=False)
    except Exception as exc:  # noqa: BLE001 - as in the task: never a failed run
        found = exc
    if not isinstance(found, str):
        event("plots_template_failed", logging.WARNING, error=type(found).__name__, reason=str(found)[:300])


@task(name="drift", **TRANSIENT)
def drift(root: str, reference_sha: str, current: str, current_sha: str) -> dict:
    """Evidently drift of the newest batch taken in against the training rows older than it (without a time
    column: the training rows that are not the batch's; ReferenceCut), on the feature columns, at most
    `retrain.drift_max_rows` rows of each (an even stride beyond). Written to a directory named by both
    files' hashes, the cut, the features compared and the cap, so an existing report of the same comparison
    is reused, not recomputed. Too few reference rows: no report, and the summary's note says why."""
    from mlpipe.monitoring.drift import read_drift, reference_cut, too_few_reference

    paths, params = setup(root)
    cap, batch, record = params.retrain.drift_max_rows, Path(current), params.record_columns
    newest = read_frame(batch, columns=record)
    cut = reference_cut(newest, params.dataset.time_column, record)
    features = params_hash(params.features.model_dump(include={"categorical", "numerical"}))
    out_dir = paths.drift_dir / f"{reference_sha[:12]}-{current_sha[:12]}-{cut.key}-{features[:8]}-{cap}"
    found = read_drift(out_dir)
    if found is None:
        reference = cut.rows(read_frame(paths.train_split, columns=record), newest)
        if short := too_few_reference(len(reference), cut, batch.name):
            event("drift_skipped", batch=batch.name, reason=short)
            return {"files": [], "summary": {"drift_share": None, "drifted_columns": None, "note": short}}
        found = _batch_report(params, out_dir, (reference, reference_sha), (newest, batch, current_sha), cut)
    html, js, summary = found
    event(
        "drift",
        batch=Path(current).name,
        drift_share=summary["drift_share"],
        drifted=summary["drifted_columns"],
    )
    return {"files": [str(html), str(js)], "summary": summary}


def _batch_report(params, out_dir: Path, reference: tuple, current: tuple, cut) -> tuple[Path, Path, dict]:
    """The drift report of the batch (frame, path, sha256) against its reference rows (frame, sha256 of
    the training split), titled with what it compares: the reference's own period, not the split's."""
    from mlpipe.monitoring.drift import describe_side, drift_report, save_drift, stride_sample

    (ref, ref_sha), (cur, path, cur_sha) = reference, current
    cap, time_col = params.retrain.drift_max_rows, params.dataset.time_column
    rows = {"reference": len(ref), "current": len(cur), "max_rows": cap}
    seen_ref, seen_cur = stride_sample(ref, cap), stride_sample(cur, cap)
    rows |= {"reference_seen": len(seen_ref), "current_seen": len(seen_cur)}
    context = {
        "title": f"Data drift: newest batch {path.name} vs the training split {cut.scope}",
        "reference": describe_side(
            f"training split rows {cut.scope} (artifacts/split/train.parquet)",
            f"sha256 {ref_sha[:16]}",
            ref[time_col] if time_col else None,
            rows["reference"],
            rows["reference_seen"],
        ),
        "current": describe_side(
            f"batch data/{path.name}",
            f"sha256 {cur_sha[:16]}",
            cur[time_col] if time_col else None,
            rows["current"],
            rows["current_seen"],
        ),
    }
    note = f"{path.name} vs {len(ref)} training rows {cut.scope}"
    snapshot = drift_report(seen_ref, seen_cur, params.features)
    return save_drift(snapshot, out_dir, rows, context, note)


@task(name="log_drift", timeout_seconds=300, cache_policy=INPUTS + TASK_SOURCE, **TRANSIENT)
def log_drift_task(tracking_uri: str, run_id: str, report: dict) -> dict:
    """Attach the drift report to the run; cached on its inputs, so a run gets each report once."""
    from mlpipe.registry.tracking import log_drift

    log_drift(tracking_uri, run_id, [Path(f) for f in report["files"]], report["summary"])
    return report["summary"]


def logged_drift(tracking_uri: str, run_id: str, report) -> dict:
    """The drift summary of the run: its report (the submitted drift task's) attached to the run, or, for a
    run that took in no batch (no task submitted), none logged and the summary says so."""
    if report is None:
        return {"drift_share": None, "drifted_columns": None, "note": NO_BATCH_DRIFT}
    return log_drift_task(tracking_uri, run_id, report.result(timeout=SUBMITTED_WAIT_S["drift"]))


@task(name="champion", **TRANSIENT)
def champion(tracking_uri: str, model_name: str) -> list | None:
    """The current champion's (version, metrics). Submitted first: its MLflow import and store set-up
    overlap with the data and training steps instead of delaying `track`."""
    from mlpipe.registry.models import champion_metrics

    found = champion_metrics(tracking_uri, model_name)
    return list(found) if found else None


@task(name="register", timeout_seconds=300, **TRANSIENT)
def register(tracking_uri: str, record: RunRecord) -> Registration:
    from mlpipe.registry.models import register_model
    from mlpipe.registry.tracking import name_version

    version, aliases = register_model(tracking_uri, record)
    if not record.already_recorded:  # the run's name said the version it expected: the one it got
        name_version(mlflow_client(tracking_uri), record.run_id, version)
    event("registered", model=record.model_name, version=version, aliases=",".join(aliases))
    return Registration(version, aliases)


@task(name="close_run", timeout_seconds=120, **TRANSIENT)
def close_run(tracking_uri: str, run_id: str) -> None:
    """The run's end moved to the pipeline's end (after the gate and lineage): its duration in the MLflow UI
    is the whole pipeline's, not the logging step's."""
    from mlpipe.registry.tracking import end_run_now

    end_run_now(mlflow_client(tracking_uri), run_id)


@task(name="precheck", timeout_seconds=120)
def precheck_task(root: str) -> list[dict]:
    """Size and expected memory of the fresh model against `deploy`, before anything is recorded: a
    hopeless model fails the flow here, with the budget it broke."""
    from mlpipe.release.infra import checks_as_dicts, precheck

    paths, params = setup(root)
    checks = precheck(paths.model, params.deploy)
    failed = [c.line() for c in checks if not c.passed]
    if failed:
        raise DeployBudgetExceeded(
            "model over the deploy budget, not recorded or registered: " + "; ".join(failed)
        )
    return checks_as_dicts(checks)


@task(name="probe")
def probe_task(root: str, tracking_uri: str, champion: str | None, model_sha256: str) -> dict:
    """The gate's infra probe of the freshly trained model (and the champion beside it), submitted before
    the run is logged: the probe's process runs on its own core while `track` and `register` write MLflow.
    The gate uses it only when the registered copy holds the same bytes and the champion is unchanged."""
    from mlpipe.release.gate import early_infra_check

    paths, params = setup(root)
    return early_infra_check(paths, params, tracking_uri, champion, model_sha256)


class EarlyProbe:
    """The submitted probe task's answer, waited for where the gate needs it (after it has fetched and
    verified the models), not before the gate starts, as Prefect does for a future passed to a task.
    Calling it gives the figures, or None when there was no probe or it failed (the gate then probes
    itself, and a failure shows there, as before)."""

    def __init__(self, future=None):
        self.future = future

    def __call__(self) -> dict | None:
        if self.future is None:
            return None
        found = self.future.result(timeout=SUBMITTED_WAIT_S["probe"], raise_on_failure=False)
        return found if isinstance(found, dict) else None


# No cache key: `early` is a handle on a running task, not a value (the gate is never served from cache).
@task(name="gate", timeout_seconds=900, cache_policy=NO_CACHE, **TRANSIENT)
def gate(
    root: str, tracking_uri: str, record: RunRecord, version: str, early: EarlyProbe | None = None
) -> GateDecision:
    """Infra check, champion comparison on the same rows, differential test; promote or keep. `early`: the
    probe task submitted after training, whose figures the gate uses when they are this model's."""
    from mlpipe.release.gate import run_gate

    paths, params = setup(root)
    return run_gate(
        paths, params, tracking_uri, record.run_id, version, record.model_sha256, early or EarlyProbe()
    )


@task(name="lineage", timeout_seconds=300, **TRANSIENT)
def lineage(tracking_uri: str, run_id: str) -> None:
    """The model's reproducibility checklist (`mlpipe lineage`) as artifacts of its run."""
    from mlpipe.registry.lineage import log_lineage

    log_lineage(mlflow_client(tracking_uri), run_id)


def _workspace_model_sha256(paths) -> str:
    return json.loads(paths.manifest.read_text())["model_sha256"]


def early_probe(root: str, uri: str, paths, model_name: str, champion: str | None) -> EarlyProbe:
    """The probe task submitted for the freshly trained model, unless a version the gate judged already
    holds these bytes (its decision stands: the probe's figures would go unused, and waiting on it cost the
    run its ~9 s)."""
    from mlpipe.registry.models import judged_version_of

    sha256 = _workspace_model_sha256(paths)
    judged = judged_version_of(uri, model_name, sha256)
    if judged is not None:
        event("gate_probe_skipped", model=model_name, version=judged, reason="same bytes, judged")
        return EarlyProbe()
    return EarlyProbe(probe_task.submit(root, uri, champion, sha256))


def _flow_run_name() -> str:
    """retrain-<trigger>-<UTC time>[-N batches]: who started it, when, and what it found waiting."""
    from datetime import UTC, datetime

    from prefect.runtime import deployment, flow_run

    params = flow_run.parameters
    trigger = deployment.name or ("experiment" if params.get("experiment") else "manual")
    try:
        _, cfg = setup(params.get("root", "."))
        waiting = len(landing.landed_batches(Path(params.get("root", ".")) / cfg.retrain.landing_dir))
    except (ConfigError, OSError):  # the name never fails a run; setup() in the flow reports it
        waiting = 0
    when = datetime.now(UTC).strftime("%Y-%m-%dT%H:%MZ")
    return f"retrain-{trigger}-{when}" + (f"-{waiting}-batches" if waiting else "")


class Beside:
    """The tasks the flow submits to run beside its steps (2 cores), each waited for within its bound: the
    champion fetched first (its MLflow import and store set-up overlap the data and training steps), the
    plots template beside everything, the drift report once the split is there, and the gate's early probe
    once a model is trained."""

    def __init__(self, root: str, uri: str, paths, model_name: str):
        self.root, self.uri, self.paths, self.model_name = root, uri, paths, model_name
        self.started_ms = int(time.time() * 1000)  # the pipeline's start: the MLflow run's
        self._champion = champion.submit(uri, model_name)
        self._template = self._drift = None
        self.probe = EarlyProbe()

    def start_plots_template(self) -> None:
        self._template = plots_template.submit(self.root)  # git-ignored files only: beside everything after

    def champion_version(self) -> str | None:
        """The champion before this run (waits for the prefetch)."""
        champ = self._champion.result(timeout=SUBMITTED_WAIT_S["champion"])
        return champ[0] if champ else None

    def after_stage(self, name: str, outcome: str, newest: Path | None, experiment: bool) -> None:
        if name == "split" and newest:  # drift needs only the split: it runs beside training (2 cores)
            self._drift = drift.submit(
                self.root, sha256_file(self.paths.train_split), str(newest), sha256_file(newest)
            )
        if name == "train" and outcome == "ran" and not experiment:
            # A freshly trained model will be judged: the gate's infra probe (a process pinned to
            # deploy.cores) measures it beside evaluate and the MLflow logging instead of after them.
            # A rerun without training leaves the probe to the gate, which mostly finds its decision made;
            # so does a retrain of bytes a judged version holds (a new commit, the same model).
            self.probe = early_probe(
                self.root, self.uri, self.paths, self.model_name, self.champion_version()
            )

    def drift_summary(self, run_id: str) -> dict:
        return logged_drift(self.uri, run_id, self._drift)

    def end_probe(self) -> None:
        """The probe's process is not left running (a gate that found its decision made did not wait)."""
        self.probe()

    def wait(self) -> None:
        wait_plots_template(self._template)


def ingest(root: str, paths, params, experiment: bool, beside: Beside) -> IngestResult:
    """data/ restored or bootstrapped, then the landed batches validated: the bad quarantined, the good
    snapshot (DVC + git). An experiment takes in no batch."""
    initial = bootstrap_task(root) if snap.needs_bootstrap(paths) else []
    restored = recorded.keep_as_recorded(paths, params)  # or refuse: data/ changes only through batches
    restored += recorded.consume_taken_before(paths, params)  # an interrupted run's committed batches
    beside.start_plots_template()
    verdicts = [] if experiment else [validate_batch(root, p) for p in collect(root)]
    accepted = [v for v in verdicts if v.accepted]
    quarantined = [quarantine_batch(root, v) for v in verdicts if not v.accepted]
    before = dvc_file_md5(paths.root / snap.DATA_DVC)
    taken = snapshot_task(root, accepted) if accepted else BatchesTaken()
    after = dvc_file_md5(paths.root / snap.DATA_DVC)
    newest = batch_to_compare(paths.data, taken.batches, initial)  # None: no batch drift
    return IngestResult(initial, restored, accepted, quarantined, taken, before, after, newest)


def run_stages(root: str, newest: Path | None, experiment: bool, beside: Beside) -> StagesResult:
    """Every stage through DVC, in order, drift and the early probe started as soon as they can be; then the
    deploy budget, every run (a model that failed it before must not slip through on a rerun)."""
    outcomes = {}
    for name in STAGES:
        outcomes[name] = stage_task(root, name)
        beside.after_stage(name, outcomes[name], newest, experiment)
    precheck_task(root)
    return StagesResult(outcomes)


def record_run(
    root: str, uri: str, paths, data_md5: str | None, experiment: bool, beside: Beside
) -> Recorded:
    """The outputs committed (unless an experiment), then the MLflow run (started when the flow started)
    and its drift report."""
    if not experiment:
        commit_outputs(root, data_md5)
        clear_run_marker(paths.root)
    champion_before = beside.champion_version()  # before track: one thread sets up the MLflow store
    record = track(root, uri, experiment, beside.started_ms)
    return Recorded(record, beside.drift_summary(record.run_id), champion_before)


def judge(root: str, uri: str, record: RunRecord, experiment: bool, beside: Beside) -> Judgement:
    """A reproducible run registered and gated (promote or keep), its lineage logged; an unreproducible one
    gets no version."""
    from mlpipe.release.gate import GateDecision

    if why := not_registered(record, experiment):
        beside.end_probe()
        if not record.already_recorded:
            close_run(uri, record.run_id)
        return Judgement(UNREGISTERED, GateDecision(f"not registered: {why}"))
    reg = register(uri, record)
    decision = gate(root, uri, record, reg.version, beside.probe)
    beside.end_probe()
    aliases = aliases_of(mlflow_client(uri), record.model_name, reg.version)
    lineage(uri, record.run_id)
    if not record.already_recorded:
        close_run(uri, record.run_id)
    return Judgement(Registration(reg.version, aliases), decision)


def summarise(
    paths,
    params,
    uri: str,
    experiment: bool,
    data: IngestResult,
    stages: StagesResult,
    run: Recorded,
    judged: Judgement,
) -> RunSummary:
    """The run summary: batches, data hashes, stages, the MLflow run, the version and the gate."""
    record, decision, reg = run.record, judged.gate, judged.registration
    quarantined, qdir = data.quarantined, params.retrain.quarantine_dir
    return RunSummary(
        verdict=verdict_text(
            stages, record.already_recorded, len(quarantined), data.set_aside_rows, qdir, experiment
        ),
        accepted=[v.path.name for v in data.accepted],
        quarantined=[Path(q).name for q in quarantined],
        quarantine_reports=[f"{q}.report.md" for q in quarantined],
        rows_accepted=data.taken.rows,
        data_before=data.before,
        data_after=data.after,
        commit=record.git_commit,
        git_dirty=record.git_dirty,
        stages_run=stages.ran,
        trained=stages.trained,
        run_id=record.run_id,
        already_recorded=record.already_recorded,
        run_link=run_link(uri, record.experiment_id, record.run_id),
        runs_link=runs_link(uri, record.experiment_id),
        model_name=record.model_name,
        model_version=reg.version,
        aliases=reg.aliases,
        model_sha256=record.model_sha256,
        metrics=record.metrics,
        drift_share=run.drift.get("drift_share"),
        drift_note=run.drift.get("note", ""),
        champion_before=run.champion_before,
        metric_rows=metric_rows(record.metrics, decision.champion_metrics_same_rows),
        tracking_uri=uri,
        gate_decision=decision.decision,
        gate_failed=decision.failed,
        gate_checks=decision.checks,
        champion=decision.champion,
        batch_notes=data.taken.notes,
        data_notes=data.restored,
        positive_class=params.dataset.positive_class,
        estimator=selection_line(read_selection(paths.selection)),
        gate_already_decided=decision.already_decided,
    )


def publish(paths, s: RunSummary, experiment: bool):
    """The summary remembered (the next `mlpipe run` answers a no-op from it, without a flow) and shown as
    Prefect artifacts; the flow run ends in a Completed state named after the outcome (`Promoted`, `Kept
    champion`, `Quarantined`..., retrain_results.outcome_state), its message saying why."""
    if not experiment:
        remember_run(paths, s)
    create_markdown_artifact(render_markdown(s), key="retrain-summary", description="What this retrain did")
    create_table_artifact(s.metric_rows, key="retrain-metrics", description="Test metrics vs the champion")
    if s.gate_checks:
        create_table_artifact(s.gate_checks, key="promotion-gate", description=f"Gate: {s.gate_decision}")
    name, message = outcome_state(
        s.gate_decision,
        s.model_version,
        failed_brief(s.gate_checks),
        len(s.quarantined),
        s.gate_already_decided,
    )
    if s.quarantined:
        create_markdown_artifact(
            "\n\n".join(Path(r).read_text() for r in s.quarantine_reports),
            key="quarantined-batches",
            description="Batches rejected by validation",
        )
        get_run_logger().warning("event=retrain_quarantined batches=%s", ",".join(s.quarantined))
    return Completed(message=message[:2000], name=name, data=s)


@flow(name="retrain", log_prints=True, flow_run_name=_flow_run_name, task_runner=StoppingTaskRunner())
def retrain(root: str = ".", tracking_uri: str | None = None, experiment: bool = False) -> RunSummary:
    """One retraining pass over the project at `root`; returns a summary (and a state named
    `Quarantined` when some batch was rejected).

    Only a committed tree trains a model that is registered: uncommitted changes fail the flow (DirtyTree)
    unless `experiment`, which trains them into one MLflow run tagged unreproducible, takes in no batch,
    commits nothing and registers nothing."""
    paths, params = setup(root)
    restore_interrupted_run(paths.root, paths.lock_file)  # what a run that did not finish left uncommitted
    if not experiment:
        require_clean_tree(paths.root)
    root, uri = str(paths.root), tracking_uri or paths.tracking_uri
    if uri == paths.tracking_uri:
        paths.mlruns.mkdir(exist_ok=True)
    with project_lock(paths.lock_file, params.retrain.lock_timeout_s):
        if not experiment:
            mark_run_writing(paths.root, RUN_WRITES)  # before any of them is written
        beside = Beside(root, uri, paths, params.model.name)
        data = ingest(root, paths, params, experiment, beside)
        stages = run_stages(root, data.newest, experiment, beside)
        run = record_run(root, uri, paths, data.after, experiment, beside)
        judged = judge(root, uri, run.record, experiment, beside)
        beside.wait()
    summary = summarise(paths, params, uri, experiment, data, stages, run, judged)
    return publish(paths, summary, experiment)
