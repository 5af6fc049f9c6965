"""`mlpipe serve`: the champion behind a REST API (FastAPI).

The model is loaded through the safe loader (recorded sha256, dependency manifest, skops allowlist);
requests are checked against the training profile before the model sees them (`request_rules`);
a request is answered only once its rows are durable in the prediction log (committed, or spooled
while the database is away; a full spool means 503 instead); `/metrics` speaks Prometheus; when the `champion`
alias moves, the new version is loaded and checked in the background and swapped in atomically."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from functools import partial

from fastapi import APIRouter, FastAPI
from fastapi.openapi.utils import get_openapi

from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import CHAMPION
from mlpipe.registry.refs import MODEL_REF, versions_of_run
from mlpipe.runtime.logs import event
from mlpipe.runtime.signing import SigningKey
from mlpipe.serving.guard import Admission, GuardRequests
from mlpipe.serving.holder import ModelHolder
from mlpipe.serving.metrics import CountRequests, Metrics
from mlpipe.serving.openapi import service_openapi
from mlpipe.serving.pages import add_pages, home_html
from mlpipe.serving.prediction_log import PredictionLog
from mlpipe.serving.probes import probe_answers
from mlpipe.serving.routes import model_router, plain_routes, probe_router, scoring_router
from mlpipe.serving.served import ServeConfig, Served
from mlpipe.serving.turns import TakeTurns
from mlpipe.serving.workers import start_workers


def load_served(client, params, ref: str, key: SigningKey) -> Served:
    """The model behind `ref` once its judged record verifies under `key` (before a byte of it is fetched),
    through the safe loader with the project's train.trusted_types, with its training profile and lineage."""

    from mlpipe.registry.judged import judged_ref
    from mlpipe.registry.models import load_profile, load_registered
    from mlpipe.serving.request_rules import rules_from

    name = params.model.name
    pinned, sha256 = judged_ref(client, ref, key)
    trusted = params.train.trusted_types
    loaded, resolved = load_registered(client, pinned, project_trusted=trusted, expected_sha256=sha256)
    run, run_id = resolved.run, resolved.run_id  # read once, by load_registered
    profile = load_profile(client, run)
    versions = versions_of_run(client, run_id, name)
    version = str(versions[0].version) if versions else "unregistered"
    tags = run.data.tags
    info = {
        "name": name,
        "version": version,
        "run_id": run_id,
        "ref": ref,
        "git_commit": tag.read(tags, tag.GIT_COMMIT),
        "data_md5": tags.get(tag.DATA_MD5),
        "model_sha256": loaded.sha256,
        "metrics": dict(run.data.metrics),
        "loader_warnings": loaded.warnings,
    }
    from mlpipe.model.outputs import classes_of, task_of

    task, classes = task_of(loaded.model), classes_of(loaded.model)
    info |= {"task": task, "classes": classes}
    from mlpipe.serving.fast_scores import compile_scorer

    rules = rules_from(profile, params)
    scorer = compile_scorer(loaded.model, rules)
    info["fast_scores"] = scorer is not None
    return Served(loaded.model, name, version, run_id, info, rules, profile, task, classes, scorer)


def health_of(client, served: Served) -> dict:
    """`status`: "degraded" when the latest monitoring run of this model said retire, else "ok"."""
    try:
        runs = client.search_runs(
            [client.get_run(served.run_id).info.experiment_id],
            filter_string=f"tags.`{tag.MONITORS}` = '{served.run_id}'",
            order_by=["attributes.start_time DESC"],
            max_results=1,
        )
    except Exception:  # noqa: BLE001 - the tracking store is down: say so rather than fail /model
        return {"status": "unknown", "status_reason": "tracking store unreachable"}
    if runs and runs[0].data.tags.get(tag.MONITOR_RETIRE) == "true":
        return {"status": "degraded", "status_reason": runs[0].data.tags.get(tag.MONITOR_REASONS, "")}
    return {"status": "ok", "status_reason": ""}


def served_alias(ref: str, watch_alias: str | None) -> str:
    """The alias the service answers by: the one it watches, else the one `ref` names ("" for a version)."""
    m = MODEL_REF.match(ref)
    return watch_alias or (m["alias"] if m and m["alias"] else "")


JSON_ROUTES = frozenset({"/predict", "/feedback"})  # their bodies must be sent as application/json


def create_app(
    client,
    params,
    ref: str,
    log: PredictionLog,
    cfg: ServeConfig,
    watch_alias: str | None = CHAMPION,
    loaded: Served | None = None,
) -> FastAPI:
    """The service: the model holder (`watch_alias`, when serving an alias, is polled for hot swaps; `loaded`,
    when given, is `ref` as load_served loaded it already, served without loading it again), the request
    guards and counters, the OpenAPI document of the served model, the pages, the routers."""
    metrics = Metrics()
    holder = ModelHolder(
        params.model.name,
        partial(load_served, client, params, key=cfg.signing_key),
        watch_alias,
        cfg.poll_s,
        metrics.swaps,
    )
    # encodes a batch's log inputs while the model predicts (its trees run without the GIL): ~1-1.5 ms per
    # 1k rows off the wait for the log
    encoder = ThreadPoolExecutor(1, thread_name_prefix="log-inputs")
    workers = start_workers()  # the model and the database calls, off the event loop (serving.workers)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        holder.start(ref, client, loaded)
        yield
        holder.stop()
        encoder.shutdown()
        workers.shutdown()
        close_log(log)

    app = FastAPI(
        title="mlpipe model service",
        lifespan=lifespan,
        description="Predictions from the champion model, checked against the training profile.",
        # FastAPI's OpenTelemetry bridge off: the service's own /metrics counts; the bridge asked the global
        # providers and the environment on every request, ~9% of a /predict's time on the event loop
        telemetry={"tracing": False, "metrics": False, "logs": False},
        docs_url=None,  # pages.add_pages: the same pages with their assets served from here, not a CDN
        redoc_url=None,
    )
    app.state.holder, app.state.log = holder, log
    alias = served_alias(ref, watch_alias)
    probes = app.state.probes = probe_answers(holder, log, metrics.registry, holder.champion.said)
    routers = [
        probe_router(probes),
        model_router(holder, partial(health_of, client), cfg, alias),
        scoring_router(holder, cfg, log, workers, encoder, metrics),
    ]
    guard_and_count(app, cfg, metrics, log, holder, alias, routers)
    app.openapi = openapi_of(app, holder, cfg)
    add_pages(app, lambda: home_html(app.title, holder.served, alias, cfg.features, holder.load_error))
    for router in routers:
        app.include_router(router)
    app.router.routes[:0] = plain_routes(routers[-1])  # /predict, /feedback: answered without FastAPI's layer
    return app


def route_paths(app: FastAPI, routers: list[APIRouter]) -> list[str]:
    """Every path the service answers: its routers' (FastAPI 0.150 keeps an included router as one entry
    of app.routes) and those added to the app itself (the pages)."""
    own = [r.path for r in app.routes if isinstance(getattr(r, "path", None), str)]
    return own + [r.path for router in routers for r in router.routes]


def guard_and_count(
    app: FastAPI, cfg: ServeConfig, metrics: Metrics, log, holder: ModelHolder, alias: str, routers: list
):
    """The request guards (size, media type, in-flight admission) inside the counters, and what /metrics
    watches: the log, the refusal reason, the served model. The connection protocol sheds by the same
    admission count, before the application (serving.connections); GuardRequests inside CountRequests: its
    413s, 415s, 503s and 500s are counted too."""
    app.state.admission = Admission(cfg.max_in_flight, on_shed=partial(metrics.count_shed, JSON_ROUTES))
    app.add_middleware(
        GuardRequests, max_bytes=cfg.max_bytes, json_paths=JSON_ROUTES, admission=app.state.admission
    )
    app.add_middleware(TakeTurns, paths=JSON_ROUTES)  # counted: its wait is part of a request's latency
    app.add_middleware(CountRequests, metrics=metrics, route_paths=lambda: route_paths(app, routers))
    metrics.watch_log(log)
    metrics.watch_refusal(holder.refusal)
    metrics.watch_model(
        lambda: (s.name, s.version, alias, s.run_id) if (s := holder.served) is not None else None
    )


def openapi_of(app: FastAPI, holder: ModelHolder, cfg: ServeConfig):
    """FastAPI's document with /predict and /feedback described from the model served now (cached per
    served version)."""
    cached: dict = {}

    def openapi() -> dict:
        served = holder.served
        key = None if served is None else (served.version, served.run_id)
        if cached.get("key") != key or "doc" not in cached:
            base = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            cached.update(
                key=key, doc=service_openapi(base, served, cfg.features, cfg.max_records, cfg.max_bytes)
            )
        return cached["doc"]

    return openapi


def close_log(log: PredictionLog) -> None:
    """Close the prediction log at shutdown and say what it did."""
    log.close()
    event(
        "prediction_log_closed",
        written=log.written,
        spooled=log.spooled,
        replayed=log.replayed,
        refused=log.refused,
        left_in_spool=log.spool.rows if log.spool is not None else 0,
        errors=len(log.errors),
    )
