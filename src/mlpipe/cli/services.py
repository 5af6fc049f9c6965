"""What runs beside the pipeline: `mlpipe serve` (the REST service), `mlpipe ui` (MLflow or Prefect) and
`mlpipe plots` (the DVC plots as a page that renders offline)."""

from __future__ import annotations

import os
import sys
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from mlpipe.cli.common import ROOT_OPTION, project, project_params, stops_on_signals, use_project_prefect
from mlpipe.registry.client import tracking_uri
from mlpipe.runtime.shell import tool_env
from mlpipe.serving.settings import SERVE, ServeSettings, env_name

if TYPE_CHECKING:  # for the annotation only: `mlpipe serve` imports the serving modules when it runs
    from mlpipe.serving.served import Served


class LogAck(StrEnum):
    """When /predict answers, as to its prediction-log rows."""

    durable = "durable"
    queued = "queued"


def check_servable(client, params, ref: str, key) -> Served:
    """`ref` loaded as the service serves it (handed to the service: loaded once), or refused in one line
    (Refused, a non-zero exit) when the service could not load it: no such version or alias, no judged
    record, a model failing the safe loader's checks. Without `--model` the service starts anyway and waits
    for `champion` (it may be set later)."""
    from mlflow.exceptions import MlflowException

    from mlpipe.errors import MlpipeError, Refused
    from mlpipe.serving.app import load_served

    try:
        return load_served(client, params, ref, key)
    except (MlpipeError, MlflowException, OSError) as exc:
        reason = " ".join(str(getattr(exc, "message", None) or exc).split())[:400]
        raise Refused(f"serve: cannot serve {ref}: {reason}") from None


def serve_option(name: str):
    """The option of ServeSettings field `name`: its flag, bounds and help from the settings (the one place
    defaults live), and its environment variable (MLPIPE_<NAME>, as a container is configured)."""
    info = ServeSettings.model_fields[name]
    bounds = {k: getattr(m, k) for m in info.metadata for k in ("ge", "le") if hasattr(m, k)}
    return typer.Option(
        f"--{name.replace('_', '-')}",
        help=info.description,
        envvar=env_name(name),
        min=bounds.get("ge"),
        max=bounds.get("le"),
    )


def serve(
    root: ROOT_OPTION = Path("."),
    host: Annotated[str, serve_option("host")] = SERVE.host,
    port: Annotated[int, serve_option("port")] = SERVE.port,
    model: Annotated[
        str | None, typer.Option("--model", help="Serve this ref instead of models:/NAME@champion.")
    ] = None,
    log_url: Annotated[
        str | None,
        typer.Option(
            "--log-url",
            help="Prediction log database URL "
            "(default: $MLPIPE_PREDICTION_LOG_URL, else SQLite under .mlpipe/).",
        ),
    ] = None,
    spool_dir: Annotated[
        Path | None,
        typer.Option(
            "--spool-dir",
            help="Where answered rows wait, fsync'd, while the log database is slow or away "
            "(replayed in order when it is back, also by the next start; default: .mlpipe/spool/).",
        ),
    ] = None,
    spool_max_mb: Annotated[float, serve_option("spool_max_mb")] = SERVE.spool_max_mb,
    log_timeout_s: Annotated[float, serve_option("log_timeout_s")] = SERVE.log_timeout_s,
    log_ack: Annotated[
        LogAck,
        typer.Option(
            "--log-ack",
            help="durable: answer once the request's log rows are committed or spooled (kill -9 loses "
            "nothing answered); queued: answer at once (faster for one client; kill -9 can lose the rows of "
            "the last ~0.2 s).",
        ),
    ] = LogAck.durable,
    max_records: Annotated[int, serve_option("max_records")] = SERVE.max_records,
    poll_s: Annotated[float, serve_option("poll_s")] = SERVE.poll_s,
    max_concurrency: Annotated[int, serve_option("max_concurrency")] = SERVE.max_concurrency,
    max_bytes: Annotated[int, serve_option("max_bytes")] = SERVE.max_bytes,
    idle_timeout_s: Annotated[float, serve_option("idle_timeout_s")] = SERVE.idle_timeout_s,
    request_timeout_s: Annotated[float, serve_option("request_timeout_s")] = SERVE.request_timeout_s,
    max_connections: Annotated[int, serve_option("max_connections")] = SERVE.max_connections,
) -> None:
    """The REST service: POST /predict, /feedback; GET /health, /ready, /model, /metrics, /docs."""
    from mlpipe.registry.aliases import CHAMPION
    from mlpipe.registry.client import mlflow_client
    from mlpipe.runtime.signing import read_signing_key
    from mlpipe.serving.app import ServeConfig, create_app
    from mlpipe.serving.prediction_log import PredictionLog, default_log_url

    settings = ServeSettings(  # the options override the defaults; the rest of serve reads settings
        host=host,
        port=port,
        spool_max_mb=spool_max_mb,
        log_timeout_s=log_timeout_s,
        max_records=max_records,
        poll_s=poll_s,
        max_concurrency=max_concurrency,
        max_bytes=max_bytes,
        idle_timeout_s=idle_timeout_s,
        request_timeout_s=request_timeout_s,
        max_connections=max_connections,
    )
    paths = project(root)
    params = project_params(paths)
    ref = model or f"models:/{params.model.name}@{CHAMPION}"
    url = log_url or os.environ.get("MLPIPE_PREDICTION_LOG_URL") or default_log_url(paths.root)
    loaded = None
    if model is not None:  # a ref asked for by name is served or refused, never waited for
        loaded = check_servable(mlflow_client(tracking_uri(paths)), params, ref, read_signing_key(paths.root))
    cfg = ServeConfig(
        max_records=settings.max_records,
        max_bytes=settings.max_bytes,
        max_in_flight=settings.max_concurrency,
        threshold=params.evaluate.threshold,
        poll_s=settings.poll_s,
        features=list(params.features.columns),
        durable_log=log_ack is LogAck.durable,
        signing_key=read_signing_key(paths.root),  # judged records verify under it (registry.judged)
    )
    service = create_app(
        mlflow_client(tracking_uri(paths)),
        params,
        ref,
        PredictionLog(
            url,
            flush_s=0.0 if log_ack is LogAck.durable else 0.2,  # queued: rows wait 0.2 s for company
            spool_dir=spool_dir or paths.root / ".mlpipe" / "spool",
            spool_max_bytes=settings.spool_max_bytes,
            timeout_s=settings.log_timeout_s,
        ),
        cfg,
        watch_alias=CHAMPION if model is None else None,
        loaded=loaded,
    )
    where = f"http://{settings.host}:{settings.port}"
    typer.echo(f"serving {ref} on {where} (docs: /docs; prediction log: {url.split('@')[-1]})")
    _listen(service, settings)


def _listen(service, settings: ServeSettings) -> None:
    """Serve `service` with uvicorn until stopped, behind the connection guard (idle, slow and too many
    connections cut: serving.connections)."""
    import logging

    import uvicorn

    from mlpipe.runtime.logs import event
    from mlpipe.serving.connections import ConnectionLimits, connection_bound, guarded_protocol
    from mlpipe.serving.workers import SWITCH_INTERVAL_S

    bound, lowered = connection_bound(settings.max_connections)
    if lowered:
        event("connection_limit_lowered", level=logging.WARNING, max_connections=bound, reason=lowered)
    limits = ConnectionLimits(
        idle_s=settings.idle_timeout_s, request_s=settings.request_timeout_s, max_connections=bound
    )
    sys.setswitchinterval(
        SWITCH_INTERVAL_S
    )  # the event loop (probes) waits less for the GIL: serving.workers
    # No uvicorn limit_concurrency: it counts idle connections too and answers /health 503 under a flood of
    # them. The in-flight limit is GuardRequests'; idle and slow connections are cut by guarded_protocol.
    uvicorn.run(
        service,
        host=settings.host,
        port=settings.port,
        log_level="warning",
        http=guarded_protocol(limits, probes=service.state.probes, admission=service.state.admission),
        timeout_keep_alive=settings.idle_timeout_s,
    )


def ui(
    root: ROOT_OPTION = Path("."),
    port: Annotated[int, typer.Option("--port", min=1, max=65535)] = 5000,
    host: str = "127.0.0.1",
    prefect: Annotated[
        bool, typer.Option("--prefect", help="Open the Prefect UI (a local server) instead.")
    ] = False,
    workers: Annotated[
        int,
        typer.Option(
            "--workers",
            min=1,
            help="MLflow server processes (MLflow's own default "
            "is 4; each imports the whole app, so one starts fastest for one person).",
        ),
    ] = 1,
) -> None:
    """Start the MLflow UI over this project's tracking store (127.0.0.1 by default), or the Prefect UI."""
    paths = project(root)
    if prefect:
        from mlpipe.runtime.localserver import prefect_server_command, prefect_server_env

        use_project_prefect(paths)
        paths.prefect_home.mkdir(parents=True, exist_ok=True)
        cmd = prefect_server_command(host, port)
        typer.echo(f"starting the Prefect UI (port {port}); its address follows once it answers")
        when_up = (
            answer_url(host, port, "api/health"),
            f"Prefect UI on http://{host}:{port} (Ctrl-C stops it)",
        )
        raise typer.Exit(serve_until_stopped(cmd, paths.root, prefect_server_env(host, port), when_up))
    uri = tracking_uri(paths)
    cmd = [
        str(Path(sys.executable).parent / "mlflow"),
        "ui",
        "--backend-store-uri",
        uri,
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]
    if not os.environ.get("MLFLOW_TRACKING_URI"):
        cmd += ["--default-artifact-root", paths.artifact_root.as_uri()]
    page = mlflow_start_page(uri, project_params(paths).model.experiment)
    typer.echo(f"starting the MLflow UI (port {port}); its address follows once it answers")
    when_up = (
        answer_url(host, port, "health"),
        f"MLflow UI on http://{host}:{port}/{page} "
        "(the model-training view, headline metrics as columns; Ctrl-C stops it)",
    )
    # MLflow's job runner (7 huey consumer processes, ~200 MB each) serves GenAI jobs this project has
    # none of: off unless the environment asks for it.
    env = tool_env()
    env.setdefault("MLFLOW_SERVER_ENABLE_JOB_EXECUTION", "false")
    raise typer.Exit(serve_until_stopped(cmd, paths.root, env, when_up))


def answer_url(host: str, port: int, path: str) -> str:
    """The address polled to know a server answers (a wildcard host is asked on the loopback)."""
    asked = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    return f"http://{asked}:{port}/{path}"


def answers(url: str) -> bool:
    """Whether an HTTP server answers at `url` (any status)."""
    import urllib.error
    import urllib.request

    direct = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # a local server: never a proxy
    try:
        with direct.open(url, timeout=2):
            return True
    except urllib.error.HTTPError:
        return True
    except (OSError, ValueError):
        return False


def announce_when_up(proc, url: str, line: str, every_s: float = 0.5) -> None:
    """Print `line` once `url` answers (a link printed before that opens an error page), unless `proc`
    ends first."""
    import time

    while proc.poll() is None:
        if answers(url):
            typer.echo(line)
            return
        time.sleep(every_s)


def mlflow_start_page(uri: str, experiment: str) -> str:
    """The page `mlpipe ui` names (registry.views.start_page), looked up in a local store only; a SQLite
    store not made yet is left for the UI to make (opening it here would create and migrate it first)."""
    from mlpipe.registry.client import local_store, mlflow_client, sqlite_store_missing
    from mlpipe.registry.views import EXPERIMENTS_PAGE, start_page

    if sqlite_store_missing(uri) or not local_store(uri):
        return EXPERIMENTS_PAGE
    return start_page(mlflow_client(uri), experiment)


def plots(
    root: ROOT_OPTION = Path("."),
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder of the page (git-ignored by default).")
    ] = Path("dvc_plots"),
) -> None:
    """The DVC plots of dvc.yaml (ROC, confusion matrix) as one HTML page that renders offline: `dvc plots
    show` with vega, vega-lite and vega-embed inlined instead of loaded from a CDN (the template plain `dvc
    plots show` uses too, .dvc/tmp/mlpipe-plots.html, written if missing). Prints its file:// URL."""
    from mlpipe.runtime.offline_plots import render_offline_plots

    paths = project(root)
    page = render_offline_plots(paths.root, out)
    typer.echo(page.as_uri())


def serve_until_stopped(
    cmd: list[str], cwd: Path, env: dict[str, str], when_up: tuple[str, str] | None = None
) -> int:
    """Run a server, its output on this terminal, until it exits (its exit code) or this command is
    stopped (Ctrl-C, SIGTERM, SIGHUP; one line). It is guarded (runtime.guard), in a process group of its
    own: the terminal's Ctrl-C reaches this process alone, which stops the server's whole group.
    `when_up`: (url, line): the line printed once the url answers."""
    import threading

    from mlpipe.runtime.guard import guarded_popen
    from mlpipe.runtime.shell import stop_process_group

    with stops_on_signals():
        proc = guarded_popen(cmd, cwd=cwd, env=env, new_session=False)
        if when_up is not None:
            threading.Thread(target=announce_when_up, args=(proc, *when_up), daemon=True).start()
        try:
            return proc.wait()
        finally:
            stop_process_group(proc, grace_s=10)
