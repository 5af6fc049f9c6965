"""The `mlpipe` command."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Annotated

import typer

from mlpipe.config import PARAMS_FILE, ProjectPaths, load_params
from mlpipe.localserver import start_prefect_server
from mlpipe.lock import LockBusy
from mlpipe.logs import configure_logging, hand_logging_to_prefect
from mlpipe.safe_load import ModelRefused
from mlpipe.shell import OFFLINE_ENV, ToolError, stop_process_group, tool_env

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Reproducible ML pipeline: DVC stages, MLflow record.")

ROOT_OPTION = Annotated[Path, typer.Option("--root", help="Project root (holds params.yaml and dvc.yaml).")]


def project(root: Path) -> ProjectPaths:
    root = root.resolve()
    if not (root / PARAMS_FILE).exists():
        raise typer.BadParameter(f"{root}: no {PARAMS_FILE} (rule: run inside an mlpipe project or pass --root)")
    return ProjectPaths(root)


def tracking_uri(paths: ProjectPaths) -> str:
    """MLFLOW_TRACKING_URI when set (team mode), else SQLite under the project's mlruns/."""
    uri = os.environ.get("MLFLOW_TRACKING_URI")
    if uri:
        return uri
    paths.mlruns.mkdir(parents=True, exist_ok=True)
    return paths.tracking_uri


@app.command()
def bootstrap(
    root: ROOT_OPTION = Path("."),
    regenerate: Annotated[bool, typer.Option(help="Rebuild data/ from the source even if the DVC cache or remote has it.")] = False,
) -> None:
    """Bring data/ to the hash data.dvc records (DVC cache or remote), else materialise the initial
    period from the source (deterministically); `dvc add` it, push to the remote, commit data.dvc."""
    from mlpipe.lineage import git_commit_paths
    from mlpipe.snapshot import bootstrap as bootstrap_data

    paths = project(root)
    params = load_params(paths.root / PARAMS_FILE)
    md5 = bootstrap_data(paths, params, regenerate=regenerate)
    commit = git_commit_paths(paths.root, ["data.dvc", ".gitignore"], f"data: initial period (md5 {md5})")
    typer.echo(f"data/ is at {md5} (data.dvc{', committed ' + commit[:8] if commit else ''}); pushed to the default DVC remote")


def use_project_prefect(paths: ProjectPaths) -> None:
    """Prefect state stays inside the project unless PREFECT_HOME/PREFECT_API_URL say otherwise
    (read by Prefect at import, so call this before importing it)."""
    os.environ.setdefault("PREFECT_HOME", str(paths.prefect_home))
    # The temporary server's first start on a cold machine (new database, imports off a cold disk)
    # took more than Prefect's default 20 s here; 20 s made the README's first command fail.
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    # mlpipe's own event lines also reach the Prefect run logs (and UI).
    os.environ.setdefault("PREFECT_LOGGING_EXTRA_LOGGERS", "mlpipe")


EXIT_QUARANTINED = 3


def print_summary(s: dict) -> None:
    metrics = ", ".join(f"{k}={v}" for k, v in s["metrics"].items() if k in ("roc_auc", "average_precision", "f1", "accuracy", "n_test"))
    lines = [
        f"mlpipe run: {s['verdict']}" + (" (this commit, data and model were already recorded)" if s["already_recorded"] else ""),
        f"  batches:       accepted {', '.join(s['accepted']) or 'none'}; quarantined {', '.join(s['quarantined']) or 'none'}",
        f"  data md5:      {s['data_before']} -> {s['data_after']}",
        f"  stages run:    {', '.join(s['stages_run']) or 'none (outputs up to date)'}",
        f"  mlflow run:    {s['run_id']}",
        f"  model:         {s['model_name']} version {s['model_version']} [{', '.join(s['aliases']) or 'no alias'}] (sha256 {s['model_sha256'][:16]}...)",
        f"  metrics:       {metrics}",
        f"  drift share:   {s['drift_share']} (newest batch vs training data)",
        f"  gate:          {s.get('gate_decision') or 'not judged'}"
        + (f" (failed: {', '.join(s['gate_failed'])})" if s.get("gate_failed") else "")
        + (f"; champion is version {s['champion']}" if s.get("champion") else ""),
        f"  git commit:    {s['commit']}{' (dirty tree)' if s['git_dirty'] else ''}",
        f"  tracking:      {s['tracking_uri']}",
        "  open the UI:   mlpipe ui   (MLflow on http://127.0.0.1:5000)",
    ]
    for report in s["quarantine_reports"]:
        lines.append(f"  QUARANTINED:   {report}")
    typer.echo("\n".join(lines))


@app.command()
def run(root: ROOT_OPTION = Path("."),
        flow: Annotated[bool, typer.Option("--flow", help="Always start the flow, even when nothing changed.")] = False) -> None:
    """The main job (the retrain flow once): bootstrap if there is no data, take in landed batches,
    `dvc repro` stage by stage, record in MLflow, drift report, register the challenger. When nothing
    changed since the recorded run (no batch, clean tree, DVC up to date), says so without a flow."""
    paths = project(root)
    if not flow:
        from mlpipe.preflight import recorded_state

        summary = recorded_state(paths, load_params(paths.root / PARAMS_FILE), tracking_uri(paths))
        if summary is not None:
            print_summary(summary)
            return
    use_project_prefect(paths)
    from flows.retrain import retrain

    if any(h.get_name() != "mlpipe-stderr" for h in logging.getLogger("mlpipe").handlers):
        hand_logging_to_prefect()
    state = retrain(root=str(paths.root), tracking_uri=tracking_uri(paths), return_state=True)
    if state.is_failed() or state.is_crashed():
        raise ToolError(f"retrain flow {state.name}: {state.message}")
    summary = state.result()
    print_summary(summary)
    if summary["quarantined"]:
        raise typer.Exit(EXIT_QUARANTINED)


@app.command()
def simulate(root: ROOT_OPTION = Path("."), next_: Annotated[bool, typer.Option("--next", help="Release the next period.")] = False) -> None:
    """Replay the bundled dataset: release the period after the newest data into the landing zone."""
    import pandas as pd

    from mlpipe.adapters import get_adapter
    from mlpipe.data import data_files, read_frame
    from mlpipe.landing import landed_batches, read_batch, release_next_period

    if not next_:
        raise typer.BadParameter("say --next to release the next period")
    paths = project(root)
    params = load_params(paths.root / PARAMS_FILE)
    time_col = params.dataset.time_column
    landing_dir = paths.root / params.retrain.landing_dir
    stamps = [read_frame(f)[time_col].max() for f in data_files(paths.data)]
    stamps += [read_batch(f, time_col)[time_col].max() for f in landed_batches(landing_dir)]
    if not stamps:
        latest = pd.Timestamp(params.dataset.initial_period.end, tz="UTC") - pd.Timedelta(hours=1)
    else:
        latest = max(stamps)
    dest = release_next_period(get_adapter(params.dataset.adapter).load_period, latest, time_col,
                               params.dataset.batch_freq, landing_dir)
    if dest is None:
        typer.echo("the source has no more periods to release")
        raise typer.Exit(1)
    typer.echo(f"released {dest.relative_to(paths.root)} ({len(read_frame(dest))} rows)")


@app.command()
def ingest(file: Path, root: ROOT_OPTION = Path(".")) -> None:
    """Copy a data file (Parquet or CSV) into the landing zone; the next run validates it."""
    from mlpipe.landing import ingest_file

    paths = project(root)
    params = load_params(paths.root / PARAMS_FILE)
    dest = ingest_file(file.resolve(), paths.root / params.retrain.landing_dir, paths.data)
    typer.echo(f"landed {dest.relative_to(paths.root)}")


@app.command()
def schedule(
    root: ROOT_OPTION = Path("."),
    port: int = 4200,
    interval: Annotated[float | None, typer.Option(help="Run every N seconds instead of the cron in params.yaml.")] = None,
) -> None:
    """Serve the retrain deployment on its schedule (retrain.cron in params.yaml). Without
    PREFECT_API_URL, a local Prefect server is started on 127.0.0.1 first (schedules need a real server)."""
    paths = project(root)
    use_project_prefect(paths)
    params = load_params(paths.root / PARAMS_FILE)
    server = None
    if not os.environ.get("PREFECT_API_URL"):
        server = start_prefect_server(port, Path(os.environ["PREFECT_HOME"]), cwd=paths.root)
        os.environ["PREFECT_API_URL"] = f"http://127.0.0.1:{port}/api"
        typer.echo(f"Prefect server and UI on http://127.0.0.1:{port}")
    try:
        from flows.retrain import retrain

        when = {"interval": interval} if interval else {"cron": params.retrain.cron}
        typer.echo(f"serving deployment retrain/{paths.root.name} ({when}); Ctrl-C stops it")
        retrain.serve(name=paths.root.name, parameters={"root": str(paths.root), "tracking_uri": tracking_uri(paths)},
                      tags=["mlpipe"], **when, print_starting_message=False)
    finally:
        if server is not None:
            stop_process_group(server)


@app.command()
def ui(root: ROOT_OPTION = Path("."), port: int = 5000, host: str = "127.0.0.1",
       prefect: Annotated[bool, typer.Option("--prefect", help="Open the Prefect UI (a local server) instead.")] = False,
       workers: Annotated[int, typer.Option("--workers", min=1, help="MLflow server processes (MLflow's own default "
                          "is 4; each imports the whole app, so one starts fastest for one person).")] = 1) -> None:
    """Start the MLflow UI over this project's tracking store (127.0.0.1 by default), or the Prefect UI."""
    paths = project(root)
    if prefect:
        use_project_prefect(paths)
        paths.prefect_home.mkdir(parents=True, exist_ok=True)
        cmd = [str(Path(sys.executable).parent / "prefect"), "server", "start", "--host", host, "--port", str(port)]
        typer.echo(f"Prefect UI on http://{host}:{port} (Ctrl-C stops it)")
        raise typer.Exit(subprocess.call(cmd, cwd=paths.root, env=tool_env()))
    uri = tracking_uri(paths)
    cmd = [str(Path(sys.executable).parent / "mlflow"), "ui", "--backend-store-uri", uri, "--host", host, "--port", str(port),
           "--workers", str(workers)]
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        cmd += ["--default-artifact-root", paths.artifact_root.as_uri()]
    typer.echo(f"MLflow UI on http://{host}:{port} (Ctrl-C stops it)")
    # MLflow's job runner (7 huey consumer processes, ~200 MB each) serves GenAI jobs this project has
    # none of: off unless the environment asks for it.
    env = tool_env()
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    raise typer.Exit(subprocess.call(cmd, cwd=paths.root, env=env))


EXIT_NOT_IDENTICAL = 4
EXIT_REFUSED = 2
JSON_OPTION = Annotated[bool, typer.Option("--json", help="Print JSON instead of text.")]


def _client(paths: ProjectPaths):
    import mlflow

    return mlflow.MlflowClient(tracking_uri=tracking_uri(paths))


def _echo_json(payload: dict) -> None:
    import json

    typer.echo(json.dumps(payload, indent=2, sort_keys=True, default=str))


@app.command()
def reproduce(ref: str, root: ROOT_OPTION = Path("."), as_json: JSON_OPTION = False,
              keep: Annotated[bool, typer.Option("--keep", help="Keep the isolated checkout (prints its path).")] = False) -> None:
    """Rebuild REF (run id, models:/NAME/VERSION or models:/NAME@ALIAS) from its git commit and DVC data
    hash in an isolated worktree and compare model bytes, predictions, metrics and stage outputs.
    Exit 0 when identical, 4 when not, 2 when it cannot be reproduced (the message says why)."""
    from mlpipe.reproduce import Refused, render_table
    from mlpipe.reproduce import reproduce as run_reproduction

    paths = project(root)
    try:
        verdict = run_reproduction(paths.root, ref, tracking_uri(paths), keep=keep)
    except Refused as exc:
        if as_json:
            _echo_json({"ref": ref, "identical": False, "refused": str(exc)})
        typer.echo(f"mlpipe reproduce: refused: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    if as_json:
        _echo_json(verdict.as_dict())
    else:
        typer.echo(render_table(verdict))
        typer.echo(f"recorded as MLflow run {verdict.reproduction_run_id}")
        if verdict.checkout:
            typer.echo(f"isolated checkout kept at {verdict.checkout} (git worktree remove --force it when done)")
    if not verdict.identical:
        raise typer.Exit(EXIT_NOT_IDENTICAL)


@app.command()
def lineage(ref: str, root: ROOT_OPTION = Path("."), as_json: JSON_OPTION = False) -> None:
    """The reproducibility checklist of one model: registry -> run -> commit -> data -> outputs -> verdicts."""
    from mlpipe.provenance import model_lineage, render_lineage
    from mlpipe.reproduce import Refused

    paths = project(root)
    try:
        d = model_lineage(_client(paths), ref)
    except Refused as exc:
        typer.echo(f"mlpipe lineage: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    _echo_json(d) if as_json else typer.echo(render_lineage(d))


@app.command()
def diff(ref_a: str, ref_b: str, root: ROOT_OPTION = Path("."), as_json: JSON_OPTION = False,
         data: Annotated[Path | None, typer.Option("--data", help="Parquet rows to compare on (default: the current test split).")] = None,
         top: Annotated[int, typer.Option("--top", help="How many most-changed rows to show.")] = 10) -> None:
    """Compare two models on the same rows: metric deltas, changed predictions, rows that moved most."""
    from mlpipe.data import read_frame
    from mlpipe.diff import diff as diff_models
    from mlpipe.diff import render_diff
    from mlpipe.reproduce import Refused

    paths = project(root)
    params = load_params(paths.root / PARAMS_FILE)
    source = data or paths.test_split
    if not source.exists():
        raise FileNotFoundError(f"{source}: no data to compare on (run `mlpipe run` first or pass --data)")
    try:
        d = diff_models(_client(paths), ref_a, ref_b, read_frame(source), params.dataset.target,
                        params.evaluate.threshold, top)
    except Refused as exc:
        typer.echo(f"mlpipe diff: {exc}", err=True)
        raise typer.Exit(EXIT_REFUSED) from None
    d["data"] = str(source)
    _echo_json(d) if as_json else typer.echo(render_diff(d))


@app.command()
def promote(ref: str, reason: Annotated[str, typer.Option("--reason", help="Why (recorded on the run and version).")],
            root: ROOT_OPTION = Path("."), as_json: JSON_OPTION = False) -> None:
    """Make REF (models:/NAME/VERSION or a run id) the champion by hand; the infra check still runs."""
    from mlpipe.gate import manual_promote

    paths = project(root)
    d = manual_promote(paths, load_params(paths.root / PARAMS_FILE), tracking_uri(paths), ref, reason)
    if as_json:
        _echo_json(d)
    else:
        typer.echo(f"champion is now version {d['version']} (was {d['replaced'] or 'none'}); {d['decision']}")


@app.command("rollback")
def rollback_cmd(root: ROOT_OPTION = Path("."),
                 reason: Annotated[str, typer.Option("--reason", help="Why (tagged on the demoted version).")] = "") -> None:
    """champion <- previous (the version the last promotion replaced)."""
    from mlpipe.gate import rollback

    paths = project(root)
    params = load_params(paths.root / PARAMS_FILE)
    demoted, champion = rollback(_client(paths), params.model.name, reason)
    typer.echo(f"champion is now version {champion} (rolled back from {demoted or 'none'})")


@app.command()
def serve(root: ROOT_OPTION = Path("."), host: str = "127.0.0.1", port: int = 8000,
          model: Annotated[str | None, typer.Option("--model", help="Serve this ref instead of models:/NAME@champion.")] = None,
          log_url: Annotated[str | None, typer.Option("--log-url", help="Prediction log database URL "
                             "(default: $MLPIPE_PREDICTION_LOG_URL, else SQLite under .mlpipe/).")] = None,
          max_records: int = 1000, poll_s: float = 5.0,
          max_concurrency: Annotated[int, typer.Option("--max-concurrency", help="Open connections/requests "
                                     "beyond this get 503 at once (uvicorn's limit), so a burst cannot pile up.")] = 64
          ) -> None:
    """The REST service: POST /predict, /feedback; GET /health, /ready, /model, /metrics, /docs."""
    import uvicorn

    from mlpipe.predlog import PredictionLog
    from mlpipe.serve import ServeConfig, create_app, default_log_url

    paths = project(root)
    params = load_params(paths.root / PARAMS_FILE)
    ref = model or f"models:/{params.model.name}@champion"
    url = log_url or os.environ.get("MLPIPE_PREDICTION_LOG_URL") or default_log_url(paths.root)
    cfg = ServeConfig(max_records=max_records, threshold=params.evaluate.threshold, poll_s=poll_s,
                      features=list(params.features.columns))
    service = create_app(_client(paths), params, ref, PredictionLog(url), cfg,
                         watch_alias="champion" if model is None else None)
    typer.echo(f"serving {ref} on http://{host}:{port} (docs: /docs; prediction log: {url.split('@')[-1]})")
    uvicorn.run(service, host=host, port=port, log_level="warning", limit_concurrency=max_concurrency)


@app.command()
def demo(root: ROOT_OPTION = Path("."),
         dir_: Annotated[Path | None, typer.Option("--dir", help="A new directory for the demo's clone "
                         "(default: .mlpipe/demo-<time> in the project).")] = None,
         traffic_rows: Annotated[int, typer.Option("--traffic-rows", help="Flights replayed as traffic.")] = 3000) -> None:
    """The whole story in a fresh clone: train, serve, new data and traffic, monitor finds drift,
    retrain, gate, hot swap; then a table of what happened and where to look."""
    from mlpipe.demo import run_demo, table

    paths = project(root)
    dest = (dir_ or paths.root / ".mlpipe" / time.strftime("demo-%Y%m%dT%H%M%S")).resolve()
    steps = run_demo(paths.root, dest, traffic_rows, typer.echo)
    typer.echo("\n" + table(steps, dest))


EXIT_RETIRE = 5


@app.command()
def monitor(root: ROOT_OPTION = Path("."), as_json: JSON_OPTION = False,
            trigger: Annotated[bool, typer.Option("--trigger/--no-trigger", help="Run the retrain flow when the verdict says so.")] = True,
            log_url: Annotated[str | None, typer.Option("--log-url", help="Prediction log URL (as for serve).")] = None) -> None:
    """Check the prediction log against the champion's training data (Evidently), decide, maybe retrain.
    Exit 5 when live performance is below monitor.floor (retire)."""
    paths = project(root)
    use_project_prefect(paths)
    from flows.monitor import monitor as monitor_flow

    if any(h.get_name() != "mlpipe-stderr" for h in logging.getLogger("mlpipe").handlers):
        hand_logging_to_prefect()
    url = log_url or os.environ.get("MLPIPE_PREDICTION_LOG_URL")
    state = monitor_flow(root=str(paths.root), tracking_uri=tracking_uri(paths), log_url=url, trigger=trigger,
                         return_state=True)
    if state.name != "Retire" and (state.is_failed() or state.is_crashed()):
        raise ToolError(f"monitor flow {state.name}: {state.message}")
    result = state.result(raise_on_failure=False)
    if as_json:
        _echo_json(result)
    else:
        verdict = "RETIRE" if result["retire"] else ("retrain" if result["retrain"] else "healthy")
        typer.echo(f"mlpipe monitor: {verdict}; {result['rows_in_window']} rows in window, input drift share "
                   f"{(result['input_drift'] or {}).get('drift_share')}, live {result['metric']} "
                   f"{(result['live_metrics'] or {}).get(result['metric'])} on {result['labels']} labels")
        for reason in result["reasons"]:
            typer.echo(f"  reason: {reason}")
        if "retrain_run" in result:
            typer.echo(f"  retrain flow: {result['retrain_run']['state']}")
    if result["retire"]:
        raise typer.Exit(EXIT_RETIRE)


@app.command()
def sweep(root: ROOT_OPTION = Path("."), as_json: JSON_OPTION = False,
          workers: Annotated[int | None, typer.Option("--workers", min=1, help="Dask workers of the local cluster "
                             "(default: sweep.workers in params.yaml).")] = None,
          dask_address: Annotated[str | None, typer.Option("--dask-address", help="An existing Dask scheduler "
                                  "(tcp://HOST:8786) instead of a local cluster.")] = None,
          apply: Annotated[bool, typer.Option("--apply/--no-apply", help="Write the winner to params.yaml, commit it "
                           "and run the pipeline (--no-apply: score and record only).")] = True) -> None:
    """Grid search over params.yaml `sweep.grid` on Dask: each candidate fitted as the train stage fits,
    scored on a validation part of the train split, recorded as a child MLflow run; the winner written to
    train.hyperparams, committed, and trained through the pipeline (DVC), so commit + data hash rebuild it."""
    paths = project(root)
    use_project_prefect(paths)
    from flows.sweep import run_sweep

    if any(h.get_name() != "mlpipe-stderr" for h in logging.getLogger("mlpipe").handlers):
        hand_logging_to_prefect()
    state = run_sweep(str(paths.root), tracking_uri(paths), workers=workers, dask_address=dask_address, apply=apply)
    if state.is_failed() or state.is_crashed():
        raise ToolError(f"sweep flow {state.name}: {state.message}")
    s = state.result()
    if as_json:
        _echo_json(s)
        return
    metric = f"val_{s['metric']}"
    lines = [f"mlpipe sweep: {len(s['candidates'])} candidates on {s['dask']} in {s['candidates_wall_s']} s "
             f"(fits {s['fit_s_total']} s); MLflow run {s['run_id']}"]
    lines += [f"  {'*' if r['candidate'] == s['winner'] else ' '} " + " ".join(f"{k}={v}" for k, v in r.items() if k != "worker")
              for r in s["candidates"]]
    lines.append(f"  winner: candidate {s['winner']} {s['winner_hyperparams']} ({metric} {s['best_value']})")
    if s["pipeline"]:
        p = s["pipeline"]
        lines.append(f"  params.yaml: {'updated' if s['params_changed'] else 'already had the winner'}"
                     + (f"; committed {s['commit'][:8]}" if s["commit"] else ""))
        lines.append(f"  pipeline run: {p['run_id']} model version {p['model_version']} [{', '.join(p['aliases']) or 'no alias'}]"
                     f" test roc_auc={p['metrics'].get('roc_auc')}; gate: {p['gate_decision']}")
    typer.echo("\n".join(lines))


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `mlpipe` script; returns the exit code."""
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")  # one line per event, no bars
    configure_logging()
    try:
        result = app(args=argv, prog_name="mlpipe", standalone_mode=False)
    except (ToolError, ValueError, FileNotFoundError, FileExistsError, KeyError, LockBusy, ModelRefused) as exc:
        typer.echo(f"mlpipe: {exc}", err=True)
        return 1
    except Exception as exc:  # click's usage errors carry their own exit codes
        import click

        if isinstance(exc, click.ClickException):
            exc.show()
            return exc.exit_code
        if isinstance(exc, click.exceptions.Abort):
            return 130
        raise
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    raise SystemExit(main())
