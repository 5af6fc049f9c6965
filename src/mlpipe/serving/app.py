"""`mlpipe serve`: the champion behind a REST API (FastAPI).

The model is loaded through the safe loader (recorded sha256, dependency manifest, skops allowlist);
requests are checked against the training profile before the model sees them (`request_rules`);
a request is answered only once its rows are durable in the prediction log (committed, or spooled
while the database is away; a full spool means 503 instead); `/metrics` speaks Prometheus; when the `champion`
alias moves, the new version is loaded and checked in the background and swapped in atomically."""

from __future__ import annotations

import asyncio
import gc
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI, Request
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from mlpipe.model.outputs import labels_from, scores, summary_score
from mlpipe.registry import tags as tag
from mlpipe.registry.aliases import CHAMPION
from mlpipe.registry.refs import MODEL_REF, versions_of_run
from mlpipe.runtime.logs import event
from mlpipe.runtime.signing import SigningKey
from mlpipe.serving.body import BodyRefused, parse_json
from mlpipe.serving.champion import ChampionWatch, poll_champion
from mlpipe.serving.guard import GuardRequests
from mlpipe.serving.metrics import CountRequests, Metrics
from mlpipe.serving.openapi import input_example, service_openapi
from mlpipe.serving.pages import add_pages, home_html
from mlpipe.serving.prediction_log import PredictionLog, inputs_json, log_rows
from mlpipe.serving.request_rules import RequestRules, Verdict, all_or_nothing, judge_records


@dataclass(frozen=True)
class Served:
    """One loaded, checked model and what /model tells about it."""

    model: object
    name: str
    version: str
    run_id: str
    info: dict
    rules: RequestRules  # from this model's own training profile: no train/serve skew
    profile: dict
    task: str = "binary"  # read off the model (model.outputs.task_of)
    classes: list = field(default_factory=list)  # the labels a classifier answers with


@dataclass
class ServeConfig:
    max_records: int = 1000
    max_bytes: int = 1 << 20  # every request body, streamed or not (serving.guard)
    max_in_flight: int | None = None  # requests at once beyond which the non-probe ones get 503
    threshold: float = 0.5
    poll_s: float = 5.0
    features: list[str] = field(default_factory=list)
    # True: answer once the rows are committed or spooled (kill -9 loses nothing answered); False: answer at
    # once, the rows queued (kill -9 can lose what queued during the last write, ~ one group commit)
    durable_log: bool = True
    # the key judged records verify under (runtime.signing); without one every version is refused
    signing_key: SigningKey = field(default_factory=lambda: SigningKey(None, "nowhere (no key given)"))


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
    rules = rules_from(profile, params)
    return Served(loaded.model, name, version, run_id, info, rules, profile, task, classes)


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


_single_thread = threading.local()


def one_openmp_thread() -> None:
    """Limit OpenMP to one thread in the calling thread (OpenMP's setting is per thread; done once per thread,
    after scikit-learn has loaded it).
    HistGradientBoosting opens a parallel region per tree (200 per predict);
    when the other core is busy, each region waits for its second thread: 450 ms instead of 5 ms for one row,
    measured on this shared 2-core machine. Predictions do not change."""
    if not getattr(_single_thread, "done", False):
        from threadpoolctl import ThreadpoolController

        openmp = ThreadpoolController().select(user_api="openmp")
        openmp.limit(limits=1)
        _single_thread.done = bool(openmp.lib_controllers)


def request_frame(
    records: list, columns: dict | None, features: list[str], rules: RequestRules
) -> pd.DataFrame:
    """The model's input frame: from the checked columns when they hold every feature, else from the records;
    the same frame either way (numerical features float64, NaN for null)."""
    if columns is not None and all(c in columns for c in features):
        return pd.DataFrame({c: columns[c] for c in features})
    frame = pd.DataFrame.from_records(records, columns=features)
    for col in rules.numerical:
        frame[col] = frame[col].astype("float64")
    return frame


def answer_body(task: str, classes: list, out: np.ndarray, answers: np.ndarray) -> dict:
    """What /predict answers per task: the class and P(positive) (binary), the class and one probability
    per class (multiclass), the value (regression)."""
    if task == "regression":
        return {"predictions": out.tolist()}
    if task == "multiclass":
        names = [str(c) for c in classes]
        rounded = np.round(out, 6).tolist()
        return {
            "predictions": answers.tolist(),
            "probabilities": [dict(zip(names, r, strict=True)) for r in rounded],
        }
    return {"predictions": answers.tolist(), "probabilities": np.round(out, 6).tolist()}


def predict_answer(
    request_id: str, served: Served, out: np.ndarray, answers: np.ndarray, verdict: Verdict
) -> dict:
    """The 200 body of /predict: one answer per record of the request (None for a refused record), the flags
    of the answered ones, the refused records' broken rules and the counts. JSON types only: FastAPI's encoder
    walk (~1 ms per 1k rows) would give back the same content."""
    answered = answer_body(served.task, served.classes, out, answers)
    return {
        "request_id": request_id,
        "model": {"name": served.name, "version": served.version, "run_id": served.run_id},
        **{k: verdict.per_record(v) for k, v in answered.items()},
        "flags": verdict.flags,
        "refused": verdict.problems,
        "counts": verdict.counts(),
    }


def feedback_rule(task: str, classes: list, labels) -> str | None:
    """Why feedback labels are refused, or None: one per row, of the target's type (a known class, or a
    finite number for regression)."""
    import math

    if not isinstance(labels, list):
        return "labels must be a list"
    if task == "regression":
        if not all(
            isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v) for v in labels
        ):
            return "labels must be a list of finite numbers"
        return None
    known = set(classes)
    if not all(not isinstance(v, bool | float) and isinstance(v, int | str) and v in known for v in labels):
        return f"labels must be a list of the model's classes ({', '.join(map(str, classes))})"
    return None


def served_alias(ref: str, watch_alias: str | None) -> str:
    """The alias the service answers by: the one it watches, else the one `ref` names ("" for a version)."""
    m = MODEL_REF.match(ref)
    return watch_alias or (m["alias"] if m and m["alias"] else "")


ENCODE_BESIDE_MIN_RECORDS = 64  # fewer: handing the records to another thread costs more than it saves


def rows_with(inputs: Future, *args, **kwargs) -> list[dict]:
    """log_rows with the inputs' JSON encoded beside the prediction (`inputs`: inputs_json's future)."""
    return log_rows(*args, **kwargs, inputs=inputs.result())


def _error(status: int, rule: str, detail: list | None = None, field_: str = "<body>") -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail or [{"field": field_, "rule": rule}]})


def _answer(content: dict) -> Response:
    """A 200 answer's JSON by orjson (~10x faster than the json module on 1k rows; the same JSON value);
    what it cannot write (an int past 64 bits in a flag) by JSONResponse. Refusals keep JSONResponse."""
    try:
        return Response(orjson.dumps(content), media_type="application/json")
    except (orjson.JSONEncodeError, TypeError):
        return JSONResponse(content)


def _refused(refusal: BodyRefused) -> JSONResponse:
    return JSONResponse(status_code=refusal.status, content={"detail": refusal.detail})


def _log_refusal(reason: str) -> JSONResponse:
    return _error(
        503,
        f"prediction log: {reason} (rule: no answer the log cannot keep; retry when /ready is true)",
        field_="<log>",
    )


def create_app(
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
        # on the event loop's thread, where /predict runs: paid here, not by the first request
        one_openmp_thread()
        watcher = threading.Thread(target=watch, name="champion-watch", daemon=True) if watch_alias else None
        if watcher:
            watcher.start()
        yield
        stop.set()
        encoder.shutdown()
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

    # GuardRequests inside CountRequests: its 413s, 503s and 500s are counted too
    app.add_middleware(GuardRequests, max_bytes=cfg.max_bytes, max_in_flight=cfg.max_in_flight)
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

    @app.get("/health")
    def health():
        return {"status": "ok"}

    @app.get("/ready")
    def ready():
        if state["served"] is None:
            return JSONResponse(
                status_code=503, content={"ready": False, "reason": state["load_error"] or "loading"}
            )
        logged = log.health()
        if logged["log"] == "full":  # no room to keep what it would answer: not ready
            return JSONResponse(
                status_code=503, content={"ready": False, "reason": logged["log_reason"], **logged}
            )
        return {"ready": True, "model_version": state["served"].version, **logged, **champion.said()}

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
    def prometheus():
        return PlainTextResponse(generate_latest(metrics.registry).decode(), media_type=CONTENT_TYPE_LATEST)

    @app.post("/predict")
    async def predict(request: Request):
        t0 = time.perf_counter()
        served = state["served"]
        if served is None:
            return JSONResponse(
                status_code=503,
                content={"detail": [{"field": "<model>", "rule": state["load_error"] or "loading"}]},
            )
        if log.full:  # refused before the model runs: its answer could not be logged
            return _log_refusal(log.full)
        try:  # the body's size is bounded by GuardRequests while it streams in
            payload = parse_json(await request.body())
        except BodyRefused as refusal:
            return _refused(refusal)
        records = payload.get("records") if isinstance(payload, dict) and "records" in payload else [payload]
        if not isinstance(records, list) or not records:
            return _error(422, "records must be a non-empty list of objects", field_="records")
        if len(records) > cfg.max_records:
            return _error(
                413, f"{len(records)} records, over the limit of {cfg.max_records}", field_="records"
            )
        if (whole := all_or_nothing(request.query_params.get("all_or_nothing"))) is None:
            return _error(422, "all_or_nothing must be true or false", field_="all_or_nothing")
        verdict = judge_records(records, served.rules)  # a record that breaks a rule is refused alone
        metrics.count_refusals(verdict)
        if not verdict.answered or (whole and verdict.refused):
            return JSONResponse(status_code=422, content={"detail": verdict.problems})
        records = verdict.taken(records)
        frame = request_frame(records, verdict.columns, cfg.features, served.rules)
        inputs = encoder.submit(inputs_json, records) if len(records) >= ENCODE_BESIDE_MIN_RECORDS else None
        one_openmp_thread()
        out = scores(served.model, frame)
        answers = labels_from(out, served.classes, cfg.threshold)
        summary = summary_score(out)
        request_id = uuid.uuid4().hex
        latency_ms = round((time.perf_counter() - t0) * 1000, 3)
        durable = log.append_later(
            partial(
                log_rows if inputs is None else partial(rows_with, inputs),
                request_id,
                records,
                summary,
                answers,
                verdict.flags,
                served.name,
                served.version,
                latency_ms,
                ts=time.time(),
                rows=verdict.answered,
            )
        )
        if cfg.durable_log:
            try:  # answered => logged or spooled: the answer waits for its rows' commit or fsync
                await asyncio.wrap_future(durable)
            except Exception as exc:  # noqa: BLE001 - spool full (or the rows failed): refuse, never answer unlogged
                return _log_refusal(str(exc))
        metrics.count_answers(served, answers)
        return _answer(predict_answer(request_id, served, out, answers, verdict))

    @app.post("/feedback")
    async def feedback(request: Request):
        expected = 'expected {"request_id": "...", "labels": [label, ...]}'
        try:
            payload = parse_json(await request.body())
            request_id, labels = payload["request_id"], payload["labels"]
        except BodyRefused as refusal:
            return _error(422, expected) if refusal.kind == "invalid_json" else _refused(refusal)
        except (KeyError, TypeError):
            return _error(422, expected)
        if not isinstance(request_id, str) or not request_id:
            return _error(422, "request_id must be the id /predict answered", field_="request_id")
        served = state["served"]
        if served is None:  # the labels' type is the model's: judge them once it is loaded
            return JSONResponse(
                status_code=503,
                content={"detail": [{"field": "<model>", "rule": state["load_error"] or "loading"}]},
            )
        rule = feedback_rule(served.task, served.classes, labels)
        if rule:
            return _error(422, rule, field_="labels")
        log.flush()
        known = log.rows_of(request_id)
        if known == 0:
            return _error(404, f"no logged request {request_id}", field_="request_id")
        if len(labels) != known:
            return _error(
                422,
                f"{len(labels)} labels for {known} answered records (rule: one per answered record)",
                field_="labels",
            )
        return {"request_id": request_id, "labels_attached": log.add_feedback(request_id, labels)}

    return app
