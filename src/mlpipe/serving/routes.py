"""The service's routes on APIRouters, each a thin adapter: the probes answer from what they read at once;
/model describes the served model; /predict and /feedback hand the body to their module (serving.predict,
serving.feedback) on the service's worker threads. The served model comes from the ModelHolder dependency."""

from __future__ import annotations

import time

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, Response
from starlette.routing import Route

from mlpipe.serving import replies
from mlpipe.serving.feedback import answer_feedback, feedback_budget_s, store_refusal
from mlpipe.serving.holder import ModelHolder
from mlpipe.serving.openapi import input_example
from mlpipe.serving.predict import answer_when_logged, score_request
from mlpipe.serving.served import ServeConfig, Served
from mlpipe.serving.workers import in_thread


def probe_response(probe: tuple[int, str, bytes]) -> Response:
    status, media_type, body = probe
    return Response(body, status_code=status, media_type=media_type)


def probe_router(probes: dict) -> APIRouter:
    """/health, /ready, /metrics: coroutines answered on the event loop at once, never behind a thread pool
    (`mlpipe serve` answers them in the connection protocol, before the application: serving.probes)."""
    router = APIRouter()

    @router.get("/health")
    async def health():
        return probe_response(probes["/health"]())

    @router.get("/ready")
    async def ready():
        return probe_response(probes["/ready"]())

    @router.get("/metrics")
    async def prometheus():
        return probe_response(probes["/metrics"]())

    return router


def model_router(holder: ModelHolder, describe, cfg: ServeConfig, alias: str) -> APIRouter:
    """/model: the served model's record (`describe(served)` adds its health), or 503 with why none is."""
    router = APIRouter()

    @router.get("/model")
    def model_info(served: Served | None = Depends(holder.current)):
        if served is None:
            reason = holder.load_error or "loading"
            return JSONResponse(status_code=503, content={"ready": False, "reason": reason})
        return {
            **served.info,
            **describe(served),
            "threshold": cfg.threshold,
            "alias": alias,
            "features": cfg.features,
            "input_example": input_example(served.profile, cfg.features),
            "max_records": cfg.max_records,
        }

    return router


def scoring_router(holder: ModelHolder, cfg: ServeConfig, log, workers, encoder, metrics) -> APIRouter:
    """/predict (checked, scored, logged before the answer when the log is durable) and /feedback (labels
    joined to logged predictions), each on its own worker pool (serving.workers)."""
    router = APIRouter()

    @router.post("/predict")
    async def predict(request: Request):
        t0, served = time.perf_counter(), holder.served  # read once: a hot swap never splits a request
        if served is None:
            return replies.model_refusal(holder.load_error)
        if log.full:  # refused before the model runs: its answer could not be logged
            return replies.log_refusal(log.full)
        body, whole = await request.body(), request.query_params.get("all_or_nothing")
        scored = await in_thread(
            workers.predict, score_request, body, whole, served, cfg, log, encoder, metrics, t0
        )
        return await answer_when_logged(scored, cfg.durable_log, metrics)

    @router.post("/feedback")
    async def feedback(request: Request):
        served, body, budget_s = holder.served, await request.body(), feedback_budget_s(log)
        try:
            answer = await in_thread(
                workers.store, answer_feedback, body, served, holder.load_error, log, timeout_s=budget_s
            )
            return answer if isinstance(answer, Response) else JSONResponse(answer)  # a plain route's answer
        except TimeoutError:
            return store_refusal(f"no answer from the log database within {budget_s} s")

    return router


def plain_routes(router: APIRouter) -> list[Route]:
    """`router`'s routes as Starlette routes of the same handlers, for the app to try first: each takes the
    Request alone, so FastAPI's handler (dependency solving, parameter checks) and the included router's
    matching add nothing to them. A /predict cost ~0.9 ms of the event loop under a burst (300 at once):
    time the probes and the other requests wait; answered here, the loop's samples (py-spy) fell by 18%.
    The APIRouter stays for the OpenAPI document, which lists FastAPI's routes alone."""
    return [Route(r.path, r.endpoint, methods=list(r.methods)) for r in router.routes]
