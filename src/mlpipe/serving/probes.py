"""The probes' answers (/health, /ready, /metrics) as plain functions of the service's state: the routes
answer with them, and so does the connection protocol (`serving.connections`) before a probe request
reaches the application at all, so no queue of /predict work can delay them."""

from __future__ import annotations

from collections.abc import Callable

import orjson
from prometheus_client import generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

JSON = "application/json"
# (status, content type, body)
Probe = tuple[int, str, bytes]


def health_answer() -> Probe:
    return 200, JSON, b'{"status":"ok"}'


def ready_content(served, load_error: str | None, logged: dict, said: dict | None = None) -> tuple[int, dict]:
    """/ready: 503 with the reason whenever /predict would refuse for a reason the operator must act on (no
    model loaded, the prediction log unable to keep answers: spool full or its disk unwritable), else 200
    with the served version, the log's state and `said` (why the champion is not the model served, when a
    newer champion was refused: serving.champion)."""
    if served is None:
        return 503, {"ready": False, "reason": load_error or "loading"}
    if logged["log"] == "full":  # no room to keep what it would answer: not ready
        return 503, {"ready": False, "reason": logged["log_reason"], **logged}
    return 200, {"ready": True, "model_version": served.version, **logged, **(said or {})}


def probe_answers(holder, log, registry, said: Callable[[], dict] = dict) -> dict[str, Callable[[], Probe]]:
    """path -> the probe's answer now (`holder`: the served model and why none is, serving.holder; `log`:
    the prediction log; `registry`: the Prometheus registry /metrics exports; `said`: the champion watch's
    word)."""

    def ready() -> Probe:
        status, content = ready_content(holder.served, holder.load_error, log.health(), said())
        return status, JSON, orjson.dumps(content)

    def metrics() -> Probe:
        return 200, CONTENT_TYPE_LATEST, generate_latest(registry)

    return {"/health": health_answer, "/ready": ready, "/metrics": metrics}
