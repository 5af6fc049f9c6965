"""Crash consistency: `mlpipe run` interrupted anywhere (SIGINT, SIGTERM, SIGKILL of its process group, at
a task boundary or inside a stage) is completed by the next plain `mlpipe run`: exit 0, every landed row in
data/ exactly once, one new model version for the new data, no MLflow run RUNNING, no Prefect flow run
Running, a clean tree, nothing left running.

A moment is hit exactly with the run's pause hook (mlpipe.runtime.pause, inert unless MLPIPE_PAUSE_AT is
set): the run waits at the log line of that moment while the test sends the signal.

Tiers: `test_a_run_interrupted_three_times_is_completed_by_the_next` (SIGTERM after the snapshot, SIGINT in
train, SIGKILL in evaluate, one after the other on one project, then a plain run) is in the suite; the full
sweep (every moment of MOMENTS x the three signals, each on a project of its own) is marked crash_sweep,
deselected by default: `make test-crash` runs it and prints its table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import psutil
import pytest
from conftest import copy_project, dvc, git, mlpipe, sh, tracking_client

from mlpipe.config import load_params
from mlpipe.data.frames import read_data_dir
from mlpipe.pipeline import layout
from mlpipe.runtime.pause import PAUSE_AT, PAUSE_DIR
from mlpipe.runtime.run_marker import MARKER
from mlpipe.runtime.shell import tool_env

pytestmark = pytest.mark.integration
MODEL = "flights-late"
SIGNALS = [signal.SIGINT, signal.SIGTERM, signal.SIGKILL]
STAGES = tuple(layout.STAGES)
STOP_WITHIN_S = 15  # SIGINT/SIGTERM: the command has exited (measured 2-4 s on an idle machine)

# moment -> the log line (pattern) the run pauses at; in the order a run with one batch meets them
MOMENTS = {
    "flow started": "Beginning flow run",
    "after collect": "Task run 'collect-*Finished",
    "after validate_batch": "Task run 'validate_batch-*Finished",
    "in snapshot: batch in data/": "event=batch_taken",
    "in snapshot: dvc add+push, no commit": "event=snapshot_done",
    "after snapshot": "Task run 'snapshot-*Finished",
    **{
        key: value
        for stage in STAGES
        for key, value in (
            (f"in {stage}: outputs removed", f"event=stage_start*stage={stage}"),
            *([("in train: model file written", "event=model_written")] if stage == "train" else []),
            (f"in {stage}: done, not recorded", f"event=stage_end*stage={stage}"),
            (f"after stage-{stage}", f"Task run 'stage-{stage}' - Finished"),
        )
    },
    **{
        f"after {task}": f"Task run '{task}-*Finished"
        for task in ("precheck", "commit_outputs", "track", "log_drift", "register", "gate", "lineage")
    },
    "flow finished, no summary": "Flow run '*' - Finished in state",
}
# the first run of a project: it makes data/ (bootstrap) before anything else
FIRST_RUN_MOMENTS = {
    "first run, in bootstrap: data/ written": "event=materialised",
    "first run, in bootstrap: dvc add+push, no commit": "event=snapshot_done",
    "first run, after bootstrap": "Task run 'bootstrap-*Finished",
}


@dataclass
class Interruption:
    moment: str
    signum: int
    pid: int
    returncode: int
    exited_s: float
    left: list[str]
    stderr: str
    paused_at: str = ""
    notes: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return signal.Signals(self.signum).name


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = tool_env(extra)
    env.pop("MLFLOW_TRACKING_URI", None)
    return env


def _alive(procs: list[psutil.Process]) -> list[str]:
    left = []
    for p in procs:
        try:
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                left.append(" ".join(p.cmdline())[:160] or str(p.pid))
        except psutil.NoSuchProcess:
            pass
    return left


def interrupt_run(root: Path, moment: str, signum: int, work: Path) -> Interruption:
    """`mlpipe run` in a process group of its own, paused at `moment`; then `signum` to the whole group
    (a terminal's Ctrl-C reaches the group; kill -9 of the group, as an OOM kill of a service's cgroup)."""
    pause = work / f"pause-{len(list(work.iterdir()))}"
    pause.mkdir()
    err_path = pause / "stderr"
    env = _env({PAUSE_AT: (MOMENTS | FIRST_RUN_MOMENTS)[moment], PAUSE_DIR: str(pause)})
    with open(err_path, "w") as stderr:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mlpipe.cli", "run"],
            cwd=root,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=stderr,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 300
        while not (pause / "paused").exists():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"never reached {moment!r}:\n{err_path.read_text()[-3000:]}")
            time.sleep(0.05)
        below = psutil.Process(proc.pid).children(recursive=True)
        sent = time.monotonic()
        os.killpg(proc.pid, signum)
        returncode = proc.wait(timeout=120)
        exited_s = time.monotonic() - sent
        deadline = time.monotonic() + 30
        while _alive(below) and time.monotonic() < deadline:
            time.sleep(0.1)
        paused_at = (pause / "paused").read_text().splitlines()[1]
        return Interruption(
            moment, signum, proc.pid, returncode, exited_s, _alive(below), err_path.read_text(), paused_at
        )
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)


def check_stopped(cut: Interruption) -> None:
    """What the interrupted command did itself: ended at once (SIGINT/SIGTERM: one line, its exit code),
    leaving nothing running."""
    assert cut.left == [], f"{cut.moment}/{cut.name}: still running {cut.left}"
    if cut.signum == signal.SIGKILL:
        assert cut.returncode == -signal.SIGKILL
        return
    tail = cut.stderr.strip().splitlines()[-1]
    assert cut.returncode == 128 + cut.signum, (cut.returncode, cut.stderr[-3000:])
    assert tail == f"mlpipe: stopped by {cut.name}; the servers it started are stopped", tail
    assert cut.exited_s < STOP_WITHIN_S, f"{cut.moment}/{cut.name}: exited after {cut.exited_s:.1f} s"
    assert "Traceback" not in cut.stderr, cut.stderr[-3000:]


@dataclass(frozen=True)
class Before:
    rows: Counter  # row hash -> how many times data/ holds that row
    landed: Counter  # the same of the landed batch
    versions: int


def land_batch(root: Path) -> Before:
    """One new batch in landing/ (the next week of the source); what data/ and the registry hold now."""
    mlpipe(root, "simulate", "--next")
    (batch,) = (root / "landing").iterdir()
    return Before(_rows(root, _data(root)), _rows(root, pd.read_parquet(batch)), len(_versions(root)))


def _data(root: Path) -> pd.DataFrame:
    return read_data_dir(root / "data")


def _rows(root: Path, frame: pd.DataFrame) -> Counter:
    columns = load_params(root / "params.yaml").record_columns
    return Counter(pd.util.hash_pandas_object(frame[columns], index=False).tolist())


def _versions(root: Path) -> list[str]:
    return [str(v.version) for v in tracking_client(root).search_model_versions(f"name = '{MODEL}'")]


def _flow_runs(root: Path, *, tag: str | None = None, unfinished: bool = False) -> list:
    """The project's flow runs on the session's Prefect server: those tagged `tag`, or those unfinished."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (
        FlowRunFilter,
        FlowRunFilterState,
        FlowRunFilterStateType,
        FlowRunFilterTags,
    )
    from prefect.client.schemas.objects import StateType

    filters = FlowRunFilter(
        tags=FlowRunFilterTags(all_=[tag]) if tag else None,
        state=FlowRunFilterState(type=FlowRunFilterStateType(any_=[StateType.RUNNING, StateType.PENDING]))
        if unfinished
        else None,
    )
    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(flow_run_filter=filters)
    return [r for r in runs if r.parameters.get("root") == str(root)]


def check_completed(root: Path, before: Before, rerun: subprocess.CompletedProcess, cuts: list) -> None:
    """The promise, after a plain `mlpipe run` that followed the interruptions `cuts`."""
    assert rerun.returncode == 0, rerun.stderr[-3000:]
    assert git(root, "status", "--porcelain") == "", "a clean tree"
    assert not (root / MARKER).exists()
    landing = root / "landing"
    assert not landing.exists() or list(landing.iterdir()) == [], "the batch is taken in"
    assert _rows(root, _data(root)) == before.rows + before.landed, "every landed row in data/, once"
    assert len(_versions(root)) == before.versions + 1, "one new version for the new data"
    client = tracking_client(root)
    experiments = [e.experiment_id for e in client.search_experiments()]
    assert client.search_runs(experiments, "attributes.status = 'RUNNING'") == []
    assert [r.name for r in _flow_runs(root, unfinished=True)] == []
    for cut in cuts:
        # The interrupted flow run, found by its process's tag, ended Crashed (no run of the project is left
        # Running: asserted above). A run whose tag the server does not give back is not asserted here: under
        # CI's full suite one of three was not found by tag (issue 28's note).
        final = cut.moment == "flow finished, no summary"  # the flow run had ended: it stays Completed
        for run in _flow_runs(root, tag=f"mlpipe-pid:{cut.pid}"):
            assert run.state_type.value == ("COMPLETED" if final else "CRASHED"), (cut.moment, run.state)
    assert json.loads(dvc(root, "status", "--json").stdout or "{}") == {}


def test_a_run_interrupted_three_times_is_completed_by_the_next(project_copy, tmp_path):
    root = project_copy
    before = land_batch(root)
    cuts = [
        interrupt_run(root, moment, signum, tmp_path)
        for moment, signum in (
            ("after snapshot", signal.SIGTERM),
            ("in train: outputs removed", signal.SIGINT),
            ("in evaluate: outputs removed", signal.SIGKILL),
        )
    ]
    for cut in cuts:
        check_stopped(cut)
    assert "event=interrupted_run_restored" in cuts[2].stderr, "the next run put back what train left"
    left = [line.strip() for line in git(root, "status", "--porcelain").splitlines()]
    assert left == ["M dvc.lock", "D metrics.json"], left

    with open(root / "params.yaml", "a") as f:  # a user's edit beside them: refused, nothing put back
        f.write("# an edit of the user's\n")
    refused = mlpipe(root, "run", check=False)
    assert refused.returncode == 6, refused.stderr[-2000:]
    assert "3 uncommitted path(s): dvc.lock, metrics.json, params.yaml" in refused.stderr
    assert "interrupted_run_restored" not in refused.stderr
    git(root, "checkout", "--", "params.yaml")

    rerun = mlpipe(root, "run", check=False)
    restored = [line for line in rerun.stderr.splitlines() if "event=interrupted_run_restored" in line]
    assert len(restored) == 1 and "left dvc.lock, metrics.json uncommitted" in restored[0], rerun.stderr
    # the killed run had trained: DVC's run-cache gives its model back, and the summary says so
    verdict = "mlpipe run: model restored from DVC's run-cache, trained before (reran evaluate)"
    assert rerun.stdout.splitlines()[0] == verdict, rerun.stdout
    check_completed(root, before, rerun, cuts)


# ---- the full sweep: `make test-crash` -----------------------------------------------------------------


@pytest.fixture(scope="module")
def sweep_table(request):
    rows: list[tuple[str, str, str]] = []
    yield rows
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is None or not rows:
        return
    width = max(len(m) for m, _, _ in rows)
    with request.config.pluginmanager.get_plugin("capturemanager").global_and_fixture_disabled():
        reporter.write_line("")
        reporter.write_sep("=", f"crash sweep: {len(rows)} interruptions, each then a plain `mlpipe run`")
        reporter.write_line(f"{'moment':<{width}}  {'signal':<7}  outcome")
        for moment, name, outcome in rows:
            reporter.write_line(f"{moment:<{width}}  {name:<7}  {outcome}")


@pytest.mark.crash_sweep
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("moment", list(MOMENTS))
def test_sweep_a_run_interrupted_here_is_completed_by_the_next(
    moment, signum, first_run, tmp_path, sweep_table
):
    root = copy_project(first_run[0], tmp_path / "project")
    _sweep_case(root, moment, signum, land_batch(root), tmp_path, sweep_table)


@pytest.mark.crash_sweep
@pytest.mark.parametrize("signum", SIGNALS, ids=lambda s: signal.Signals(s).name)
@pytest.mark.parametrize("moment", list(FIRST_RUN_MOMENTS))
def test_sweep_a_first_run_interrupted_here_is_completed_by_the_next(
    moment, signum, template_repo, first_run, tmp_path, sweep_table
):
    root = tmp_path / "project"
    sh(["git", "clone", "-q", str(template_repo), str(root)], tmp_path)
    for key in ("user.email", "user.name"):
        git(root, "config", key, git(template_repo, "config", key))
    initial = _rows(first_run[0], _data(first_run[0]))  # the same source and period: the same rows
    _sweep_case(root, moment, signum, Before(Counter(), initial, 0), tmp_path, sweep_table)


def _sweep_case(root: Path, moment: str, signum: int, before: Before, tmp_path: Path, table: list) -> None:
    """One interruption of the sweep, then a plain run; its row in the table, whatever happens."""
    work = tmp_path / "work"
    work.mkdir()
    outcome = "FAILED: "
    try:
        cut = interrupt_run(root, moment, signum, work)
        stopped = "killed" if signum == signal.SIGKILL else f"exit {cut.returncode} in {cut.exited_s:.1f} s"
        outcome += f"{stopped}; "
        check_stopped(cut)
        rerun = mlpipe(root, "run", check=False)
        restored = next(
            (line for line in rerun.stderr.splitlines() if "event=interrupted_run_restored" in line), ""
        )
        put_back = restored.split(" left ", 1)[1].split(" uncommitted")[0] if restored else "nothing"
        stages = [ln.split(":", 1)[1].strip() for ln in rerun.stdout.splitlines() if "stages run:" in ln]
        outcome += f"rerun exit {rerun.returncode}, put back {put_back}, stages {(stages or ['-'])[0]}"
        check_completed(root, before, rerun, [cut])
        outcome = "ok: " + outcome.removeprefix("FAILED: ")
    except AssertionError as exc:
        outcome += " ".join(str(exc).split())[:160]
        raise
    finally:
        table.append((moment, signal.Signals(signum).name, outcome))
