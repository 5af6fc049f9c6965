"""`mlpipe serve`: the champion behind a REST API (FastAPI).

The model is loaded through the safe loader (recorded sha256, dependency manifest, skops allowlist);
requests are checked against the training profile before the model sees them (`request_rules`);
a request is answered only once its rows are durable in the prediction log (committed, or spooled
while the database is away; a full spool means 503 instead); `/metrics` speaks Prometheus; when the `champion`
alias moves, the new version is loaded and checked in the background and swapped in atomically."""

from __future__ import annotations

import gc
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from functools import partial

from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, Response

from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import CHAMPION
from mlpipe.registry.refs import MODEL_REF, versions_of_run
from mlpipe.runtime.logs import event
from mlpipe.runtime.signing import SigningKey
from mlpipe.serving import replies
from mlpipe.serving.champion import ChampionWatch, poll_champion
from mlpipe.serving.feedback import answer_feedback, feedback_budget_s, store_refusal
from mlpipe.serving.guard import Admission, GuardRequests
from mlpipe.serving.metrics import CountRequests, Metrics
from mlpipe.serving.openapi import input_example, service_openapi
from mlpipe.serving.pages import add_pages, home_html
from mlpipe.serving.predict import answer_when_logged, score_request
from mlpipe.serving.prediction_log import PredictionLog
from mlpipe.serving.probes import probe_answers
from mlpipe.serving.served import ServeConfig, Served
from mlpipe.serving.workers import in_thread, start_workers


def load_served(client, params, ref: str, key: SigningKey) -> Served:
    """The model behind `ref` once its judged record verifies under `key` (before a byte of it is fetched),
    through the safe loader with the project's train.trusted_types, with its training profile and lineage."""

    from mlpipe.registry.judged import judged_ref
    from mlpipe.registry.models import load_profile, load_registered
    from mlpipe.serving.request_rules import rules_from

    name = params.model.name
    pinned, sha256 = judged_ref(client, ref, key)
    trusted = params.train.trusted_types
    loaded, run_id = load_registered(client, pinned, project_trusted=trusted, expected_sha256=sha256)
    profile = load_profile(client, run_id)
    run = client.get_run(run_id)
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


def probe_response(probe: tuple[int, str, bytes]) -> Response:
    status, media_type, body = probe
    return Response(body, status_code=status, media_type=media_type)


def create_app(  # noqa: C901, PLR0915 -- issue 31: routers and a model holder
    client, params, ref: str, log: PredictionLog, cfg: ServeConfig, watch_alias: str | None = CHAMPION
) -> FastAPI:
    """The service; `watch_alias` (when serving an alias) is polled for hot swaps."""
    name = params.model.name
    state: dict = {"served": None, "load_error": None}
    metrics = Metrics()
    stop = threading.Event()
    # encodes a batch's log inputs while the model predicts (its trees run without the GIL): ~1-1.5 ms per
    # 1k rows off the wait for the log
    encoder = ThreadPoolExecutor(1, thread_name_prefix="log-inputs")
    workers = start_workers()  # the model and the database calls, off the event loop (serving.workers)

    def load(target: str) -> None:
        try:
            state["served"] = load_served(client, params, target, cfg.signing_key)  # one assignment: atomic
            state["load_error"] = None
            # The model's objects (and the imports') out of the cyclic collector's reach: its full passes no
            # longer walk them in the middle of a request (p99 of single rows)
            gc.collect()
            gc.freeze()
            event("model_loaded", model=name, version=state["served"].version)
        except Exception as exc:  # noqa: BLE001 - the reason is reported, never served
            state["load_error"] = f"{type(exc).__name__}: {exc}".splitlines()[0]
            event("model_refused", model=name, ref=target, error=state["load_error"], level=40)

    champion = ChampionWatch()

    def watch() -> None:
        def fetch(ref: str) -> Served:
            return load_served(client, params, ref, cfg.signing_key)

        while not stop.wait(cfg.poll_s):
            found = poll_champion(champion, client, name, watch_alias, state["served"], fetch, metrics.swaps)
            if found is not None:
                state["served"] = found  # one assignment: the swap is atomic

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        load(ref)
        watcher = threading.Thread(target=watch, name="champion-watch", daemon=True) if watch_alias else None
        if watcher:
            watcher.start()
        yield
        stop.set()
        encoder.shutdown()
        workers.shutdown()
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

    app = FastAPI(
        title="mlpipe model service",
        lifespan=lifespan,
        description="Predictions from the champion model, checked against the training profile.",
        docs_url=None,  # pages.add_pages: the same pages with their assets served from here, not a CDN
        redoc_url=None,
    )
    app.state.mlpipe = state
    alias = served_alias(ref, watch_alias)
    app.state.log = log

    # The connection protocol sheds by the same count, before the application (serving.connections);
    # GuardRequests inside CountRequests: its 413s, 415s, 503s and 500s are counted too
    app.state.admission = Admission(cfg.max_in_flight, on_shed=partial(metrics.count_shed, JSON_ROUTES))
    app.add_middleware(
        GuardRequests, max_bytes=cfg.max_bytes, json_paths=JSON_ROUTES, admission=app.state.admission
    )
    app.add_middleware(CountRequests, metrics=metrics, route_paths=lambda: [r.path for r in app.routes])
    metrics.watch_log(log)
    metrics.watch_refusal(lambda: champion.reason or (None if state["served"] else state["load_error"]))
    metrics.watch_model(
        lambda: (s.name, s.version, alias, s.run_id) if (s := state["served"]) is not None else None
    )
    cached: dict = {}

    def openapi() -> dict:
        """FastAPI's document with /predict and /feedback described from the model served now."""
        served = state["served"]
        key = None if served is None else (served.version, served.run_id)
        if cached.get("key") != key or "doc" not in cached:
            base = get_openapi(
                title=app.title, version=app.version, description=app.description, routes=app.routes
            )
            cached.update(
                key=key, doc=service_openapi(base, served, cfg.features, cfg.max_records, cfg.max_bytes)
            )
        return cached["doc"]

    app.openapi = openapi
    add_pages(app, lambda: home_html(app.title, state["served"], alias, cfg.features, state["load_error"]))

    # The probes are coroutines that read state: answered on the event loop at once, never behind a thread
    # pool; `mlpipe serve` answers them in the connection protocol, before the application (serving.probes)
    probes = app.state.probes = probe_answers(state, log, metrics.registry, champion.said)

    @app.get("/health")
    async def health():
        return probe_response(probes["/health"]())

    @app.get("/ready")
    async def ready():
        return probe_response(probes["/ready"]())

    @app.get("/model")
    def model_info():
        served = state["served"]
        if served is None:
            return JSONResponse(
                status_code=503, content={"ready": False, "reason": state["load_error"] or "loading"}
            )
        return {
            **served.info,
            **health_of(client, served),
            "threshold": cfg.threshold,
            "alias": alias,
            "features": cfg.features,
            "input_example": input_example(served.profile, cfg.features),
            "max_records": cfg.max_records,
        }

    @app.get("/metrics")
    async def prometheus():
        return probe_response(probes["/metrics"]())

    @app.post("/predict")
    async def predict(request: Request):
        t0 = time.perf_counter()
        served = state["served"]
        if served is None:
            return replies.model_refusal(state["load_error"])
        if log.full:  # refused before the model runs: its answer could not be logged
            return replies.log_refusal(log.full)
        body, whole = await request.body(), request.query_params.get("all_or_nothing")
        scored = await in_thread(
            workers.predict, score_request, body, whole, served, cfg, log, encoder, metrics, t0
        )
        return await answer_when_logged(scored, cfg.durable_log, metrics)

    @app.post("/feedback")
    async def feedback(request: Request):
        body, budget_s = await request.body(), feedback_budget_s(log)
        try:
            return await in_thread(
                workers.store,
                answer_feedback,
                body,
                state["served"],
                state["load_error"],
                log,
                timeout_s=budget_s,
            )
        except TimeoutError:
            return store_refusal(f"no answer from the log database within {budget_s} s")

    return app
