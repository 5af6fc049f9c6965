"""Running the pipeline: `mlpipe run`, `schedule`, `monitor`, `sweep` (each a Prefect flow)."""

from __future__ import annotations

import os
import socket
from dataclasses import asdict
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.cli.common import (
    JSON_OPTION,
    ROOT_OPTION,
    echo_json,
    mark_crashed_flow_runs,
    owned_flow_runs,
    project,
    project_params,
    project_prefect_api,
    stops_on_signals,
    use_project_prefect,
)
from mlpipe.errors import EXIT_QUARANTINED, EXIT_RETIRE, FlowFailed
from mlpipe.registry.client import tracking_uri
from mlpipe.runtime.logs import hand_logging_to_prefect
from mlpipe.runtime.pause import install_pause_hook


def name_files_not_taken_in(paths, params) -> None:
    """One line naming the files a `files` source's glob matches that nothing took in: a new file there is
    never read by itself (the bootstrap read the glob once; later rows come by `mlpipe ingest`)."""
    from mlpipe.data.naming import files_not_taken_in

    if params.dataset.source != "files" or params.dataset.time_column:
        return  # a time column: `mlpipe simulate --next` reads the glob again for each later period
    seen = [paths.root / params.retrain.landing_dir, paths.root / params.retrain.quarantine_dir]
    new = files_not_taken_in(params.dataset.path or "", paths.root, paths.data, seen)
    if new:
        shown = ", ".join(str(p.relative_to(paths.root) if p.is_relative_to(paths.root) else p) for p in new)
        typer.echo(
            f"note: {len(new)} file(s) match dataset.path {params.dataset.path!r} but were never taken in "
            f"({shown}): `mlpipe ingest FILE` takes each in as a batch",
            err=True,
        )


def run(
    root: ROOT_OPTION = Path("."),
    flow: Annotated[
        bool, typer.Option("--flow", help="Always start the flow, even when nothing changed.")
    ] = False,
    experiment: Annotated[
        bool,
        typer.Option(
            "--experiment",
            help="Train from uncommitted changes: one MLflow run tagged unreproducible, never registered.",
        ),
    ] = False,
    as_json: JSON_OPTION = False,
) -> None:
    """The main job (the retrain flow once): bootstrap if there is no data, take in landed batches,
    `dvc repro` stage by stage, record in MLflow, drift report, register the challenger. When nothing
    changed since the recorded run (no batch, clean tree, DVC up to date), says so without a flow.
    Uncommitted changes are refused (exit 6) unless --experiment, except the files a run interrupted
    before committing them left (data.dvc, dvc.lock, metrics.json): put back as HEAD has them, and the work
    redone. SIGTERM, SIGINT or SIGHUP stop it within seconds with its Prefect server (the flow run ends
    Crashed); a run killed outright is marked Crashed by the next, which completes its work."""
    from mlpipe.pipeline.estimators import check_estimator
    from mlpipe.pipeline.layout import (
        check_positive_class_tracked,
        check_selection_tracked,
        check_source_tracked,
    )
    from mlpipe.runtime.git import require_clean_tree
    from mlpipe.runtime.pin import require_pinned_mlpipe
    from mlpipe.runtime.run_marker import restore_interrupted_run

    paths = project(root)
    params = project_params(paths)
    require_pinned_mlpipe(paths.root)  # a project trains with the mlpipe its commit pins, or not at all
    check_source_tracked(paths.root, params.dataset.source)
    check_positive_class_tracked(paths.root, params.dataset.positive_class)
    check_selection_tracked(paths.root, params)
    restore_interrupted_run(paths.root, paths.lock_file)  # what a run that did not finish left uncommitted
    if not experiment:
        require_clean_tree(paths.root)
    name_files_not_taken_in(paths, params)
    if not flow and not experiment:
        from mlpipe.flows.preflight import recorded_state

        summary = recorded_state(paths, params, tracking_uri(paths))
        if summary is not None:  # answered from files alone: no MLflow import (a second's work)
            print_summary(summary, as_json)
            return
    say_run_starts(paths, params, flow, experiment)  # a first line within a second, before the server boots
    with stops_on_signals(), project_prefect_api(paths) as prefect_ready:  # the server boots meanwhile
        # a typo in train.estimator or train.hyperparams is one line now, not the train stage's failure
        # after the data steps
        check_estimator(params.train.estimator, params.task, params.train.hyperparams)
        from mlpipe.flows.retrain import retrain

        hand_logging_to_prefect()
        install_pause_hook()  # tests only: inert unless MLPIPE_PAUSE_AT is set
        _open_tracking_store(paths)  # the server boots meanwhile: MLflow's import and store set-up
        prefect_ready()
        with owned_flow_runs():
            state = retrain(
                root=str(paths.root),
                tracking_uri=tracking_uri(paths),
                experiment=experiment,
                return_state=True,
            )
        if state.is_failed() or state.is_crashed():
            raise FlowFailed(f"retrain flow {state.name}: {state.message}")
        summary = state.result()
    print_summary(summary, as_json)
    say_if_champion_unservable(paths, params)
    if summary.quarantined:
        raise typer.Exit(EXIT_QUARANTINED)


def say_run_starts(paths, params, forced: bool, experiment: bool) -> None:
    """The run's first line (stderr, like every event), before the seconds Prefect's local server and
    MLflow's import take: what it will work on."""
    from mlpipe.data.zone import landed_batches
    from mlpipe.runtime.logs import event

    waiting = landed_batches(paths.root / params.retrain.landing_dir)
    reason = "--experiment" if experiment else "--flow" if forced else "changes since the recorded run"
    event(
        "run_start",
        reason=reason,
        batches_waiting=len(waiting),
        next="Prefect's local server and the tracking store, then the stages",
    )


def say_if_champion_unservable(paths, params) -> None:
    """One line on stderr when the champion has no judged record that verifies (`mlpipe serve` would refuse
    it): a version judged before mlpipe signed its records, or a record forged in the registry."""
    from mlpipe.registry.client import mlflow_client
    from mlpipe.registry.judged import unjudged_champion
    from mlpipe.runtime.signing import read_signing_key

    client = mlflow_client(tracking_uri(paths))
    said = unjudged_champion(client, params.model.name, read_signing_key(paths.root))
    if said:
        typer.echo(said, err=True)


def print_summary(summary, as_json: bool) -> None:
    """The run's summary on stdout: the text a person reads, or with --json its fields (RunSummary)."""
    from mlpipe.flows.common import render_text

    if as_json:
        echo_json(summary.as_dict())
    else:
        typer.echo(render_text(summary))


def _open_tracking_store(paths) -> None:
    """MLflow imported and the project's store opened (created on a fresh clone) before the flow starts,
    under the project lock (a run waiting for another leaves it to the flow); any failure is the flow's
    to report, with its retries."""
    from mlpipe.errors import LockBusy
    from mlpipe.registry.client import open_store
    from mlpipe.runtime.lock import project_lock
    from mlpipe.runtime.logs import event

    try:
        with project_lock(paths.lock_file, timeout_s=0):
            open_store(tracking_uri(paths))
    except LockBusy:
        return
    except Exception as exc:  # a warm-up: the champion task meets the same store and says why
        event("store_warmup_failed", error=f"{type(exc).__name__}: {exc}"[:300])


def schedule(
    root: ROOT_OPTION = Path("."),
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 4200,
    interval: Annotated[
        float | None, typer.Option(help="Run every N seconds instead of the cron in params.yaml.")
    ] = None,
) -> None:
    """Serve the retrain deployment on its schedule (retrain.cron in params.yaml). Without
    PREFECT_API_URL, a local Prefect server is started on 127.0.0.1 first (schedules need a real server)."""
    from mlpipe.runtime.localserver import start_prefect_server
    from mlpipe.runtime.shell import stop_process_group

    paths = project(root)
    use_project_prefect(paths)
    params = project_params(paths)
    server = None
    with stops_on_signals():
        if not os.environ.get("PREFECT_API_URL"):
            server = start_prefect_server(port, Path(os.environ["PREFECT_HOME"]), cwd=paths.root)
            os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
            typer.echo(f"Prefect server and UI on http://127.0.0.1:{port}")
        try:
            from mlpipe.flows.retrain import retrain

            mark_crashed_flow_runs(socket.gethostname())
            when = {"interval": interval} if interval else {"cron": params.retrain.cron}
            typer.echo(f"serving deployment retrain/{paths.root.name} ({when}); Ctrl-C stops it")
            retrain.serve(
                name=paths.root.name,
                parameters={"root": str(paths.root), "tracking_uri": tracking_uri(paths)},
                tags=["mlpipe"],
                description=(
                    f"Retrain {params.model.name} in {paths.root} ({when}): take in landed batches, "
                    "validate, train, judge at the gate, register; the champion changes only when the gate "
                    "promotes"
                ),
                **when,
                print_starting_message=False,
            )
        finally:
            if server is not None:
                stop_process_group(server, grace_s=10)


def monitor(
    root: ROOT_OPTION = Path("."),
    as_json: JSON_OPTION = False,
    trigger: Annotated[
        bool,
        typer.Option(
            "--trigger/--no-trigger",
            help="On a retrain verdict, land what is new to train on and run the retrain flow on it.",
        ),
    ] = True,
    log_url: Annotated[
        str | None, typer.Option("--log-url", help="Prediction log URL (as for serve).")
    ] = None,
) -> None:
    """Judge the champion on its own rows of the prediction log against its training data (Evidently), the
    other versions' rows described beside it; decide, maybe retrain on what is new (labelled traffic when
    monitor.feedback_as_batch, a time source's next period). Exit 5 when live performance is below
    monitor.floor (retire)."""
    paths = project(root)
    with stops_on_signals(), project_prefect_api(paths) as prefect_ready:
        from mlpipe.flows.monitor import monitor as monitor_flow

        hand_logging_to_prefect()
        url = log_url or os.environ.get("MLPIPE_PREDICTION_LOG_URL")
        prefect_ready()
        with owned_flow_runs():
            state = monitor_flow(
                root=str(paths.root),
                tracking_uri=tracking_uri(paths),
                log_url=url,
                trigger=trigger,
                return_state=True,
            )
        if state.name != "Retire" and (state.is_failed() or state.is_crashed()):
            raise FlowFailed(f"monitor flow {state.name}: {state.message}")
        result = state.result(raise_on_failure=False)
    from mlpipe.monitoring.summary import MonitorResult, summary_lines

    if isinstance(result, dict):  # the Retire state's data: the result as a dict
        result = MonitorResult.from_dict(result)
    if as_json:
        echo_json(result.as_dict())
    else:
        typer.echo("\n".join(summary_lines(result)))
    if result.retire:
        raise typer.Exit(EXIT_RETIRE)


def sweep(
    root: ROOT_OPTION = Path("."),
    as_json: JSON_OPTION = False,
    workers: Annotated[
        int | None,
        typer.Option(
            "--workers",
            min=1,
            help="Dask workers of the local cluster (default: sweep.workers in params.yaml).",
        ),
    ] = None,
    dask_address: Annotated[
        str | None,
        typer.Option(
            "--dask-address", help="An existing Dask scheduler (tcp://HOST:8786) instead of a local cluster."
        ),
    ] = None,
    apply: Annotated[
        bool,
        typer.Option(
            "--apply/--no-apply",
            help="Write the winner to params.yaml, commit it "
            "and run the pipeline (--no-apply: score and record only).",
        ),
    ] = True,
) -> None:
    """Grid search over params.yaml `sweep.grid` on Dask: each candidate fitted as the train stage fits,
    scored on a validation part of the train split, recorded as a child MLflow run; the winner written to
    train.hyperparams, committed, and trained through the pipeline (DVC), so commit + data hash rebuild it."""
    from mlpipe.runtime.pin import require_pinned_mlpipe

    paths = project(root)
    require_pinned_mlpipe(paths.root)  # its winner is trained through the pipeline
    with stops_on_signals(), project_prefect_api(paths) as prefect_ready:
        from mlpipe.flows.sweep import run_sweep

        hand_logging_to_prefect()
        prefect_ready()
        with owned_flow_runs():
            state = run_sweep(
                str(paths.root), tracking_uri(paths), workers=workers, dask_address=dask_address, apply=apply
            )
        if state.is_failed() or state.is_crashed():
            raise FlowFailed(f"sweep flow {state.name}: {state.message}")
        result = state.result()
    if as_json:
        echo_json(asdict(result))
        return
    typer.echo(sweep_summary(result))


def sweep_summary(s) -> str:
    """What `mlpipe sweep` prints of a SweepResult: every candidate (the winner starred), the winner, and
    with apply the params commit and the pipeline run."""
    metric = f"val_{s.metric}"
    lines = [
        f"mlpipe sweep: {len(s.candidates)} candidates on {s.dask} in {s.candidates_wall_s} s "
        f"(fits {s.fit_s_total} s); MLflow run {s.run_id}"
    ]
    lines += [
        f"  {'*' if r['candidate'] == s.winner else ' '} "
        + " ".join(f"{k}={v}" for k, v in r.items() if k != "worker")
        for r in s.candidates
    ]
    lines.append(f"  winner: candidate {s.winner} {s.winner_hyperparams} ({metric} {s.best_value})")
    if s.pipeline:
        p = s.pipeline
        lines.append(
            f"  params.yaml: {'updated' if s.params_changed else 'already had the winner'}"
            + (f"; committed {s.commit[:8]}" if s.commit else "")
        )
        lines.append(
            f"  pipeline run: {p['run_id']} model version {p['model_version']} "
            f"[{', '.join(p['aliases']) or 'no alias'}]"
            f" test {s.metric}={p['metrics'].get(s.metric)}; gate: {p['gate_decision']}"
        )
    return "\n".join(lines)
