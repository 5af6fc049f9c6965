"""/feedback: ground-truth labels attached to a logged request, in the prediction log's database.

Labels are stored in the database only (not spooled): while it is locked, slow or away, or while the
request's own rows still wait in the spool, /feedback answers 503 naming the reason, and the client sends
the labels again later. The database calls run in a worker thread with deadlines (`serving.workers`), never
on the event loop."""

from __future__ import annotations

import math

import sqlalchemy as sa
from fastapi.responses import JSONResponse

from mlpipe.serving import replies
from mlpipe.serving.body import BodyRefused, parse_json
from mlpipe.serving.prediction_log import PredictionLog
from mlpipe.serving.served import Served

EXPECTED = 'expected {"request_id": "...", "labels": [label, ...]}'


def feedback_rule(task: str, classes: list, labels) -> str | None:
    """Why feedback labels are refused, or None: one per row, of the target's type (a known class, or a
    finite number for regression)."""
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


def feedback_budget_s(log: PredictionLog) -> float:
    """How long /feedback may wait for the log: the queue's flush, a read and a write, each bounded by the
    database timeout, and a second to spare."""
    return 4 * log.timeout_s + 1


def answer_feedback(
    body: bytes, served: Served | None, load_error: str | None, log: PredictionLog
) -> JSONResponse | dict:
    """The /feedback answer to `body`: labels attached (200), or the refusal naming its rule (`served`: the
    model served now, None while `load_error` or loading). Blocking (the database): called in a worker
    thread."""
    try:
        payload = parse_json(body)
        request_id, labels = payload["request_id"], payload["labels"]
    except BodyRefused as refusal:
        return replies.error(422, EXPECTED) if refusal.kind == "invalid_json" else replies.refused(refusal)
    except (KeyError, TypeError):
        return replies.error(422, EXPECTED)
    if not isinstance(request_id, str) or not request_id:
        return replies.error(422, "request_id must be the id /predict answered", field_="request_id")
    if served is None:  # the labels' type is the model's: judge them once it is loaded
        return replies.model_refusal(load_error)
    rule = feedback_rule(served.task, served.classes, labels)
    if rule:
        return replies.error(422, rule, field_="labels")
    try:
        return attach_labels(log, request_id, labels)
    except sa.exc.DBAPIError as exc:  # locked, slow or away: the labels are not kept, the client retries
        reason = f"{type(exc.orig).__name__}: {exc.orig}".splitlines()[0]
        return store_refusal(f"database: {reason}")


def attach_labels(log: PredictionLog, request_id: str, labels: list) -> JSONResponse | dict:
    """Labels attached to the logged rows of `request_id` (one per answered record)."""
    if not log.flush(log.timeout_s):  # rows answered with --log-ack queued may still be on their way
        return store_refusal("rows answered earlier are still being written")
    known = log.rows_of(request_id)
    if known == 0:
        if log.spool is not None and log.spool.active:  # its rows may wait there for the database
            return store_refusal(f"rows wait in the spool, database: {log.db_error or 'replaying'}")
        return replies.error(404, f"no logged request {request_id}", field_="request_id")
    if len(labels) != known:
        return replies.error(
            422,
            f"{len(labels)} labels for {known} answered records (rule: one per answered record)",
            field_="labels",
        )
    return {"request_id": request_id, "labels_attached": log.add_feedback(request_id, labels)}


def store_refusal(reason: str) -> JSONResponse:
    return replies.error(
        503,
        f"feedback not stored: {reason} (rule: labels are kept in the log database only; send them again "
        "when /ready says log ok)",
        field_="<log>",
    )
