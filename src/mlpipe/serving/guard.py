"""The request path's guard (pure ASGI, inside the metrics middleware so everything it answers is counted):

- load shedding: more than `max_in_flight` requests at once get an immediate 503 naming the rule, with
  Retry-After, except the probes (/health, /ready, /metrics), which always answer; a request counts from
  its headers to its answer, also while it waits for a worker thread (`serving.workers`), so a burst is shed
  instead of queued; idle connections count for nothing here (they are cut by the connection deadlines,
  `serving.connections`);
- media type: a body sent to a JSON route (`json_paths`: /predict, /feedback) whose Content-Type is not
  application/json (parameters such as charset allowed) is a 415: a web page's form or text/plain post
  (which a browser sends cross-site without a CORS preflight) never reaches the handler;
- body size: a Content-Length over `max_bytes` is a 413 before a byte of the body is read, and a body
  streamed without one (chunked) is a 413 as soon as the bytes received pass the limit: a request costs
  at most about `max_bytes` of memory, on every endpoint;
- unexpected errors: any exception a handler raises is a 500 with a request id, counted in /metrics and
  logged as one structured line (`event=request_failed request_id=... error=... at=file:line`)."""

from __future__ import annotations

import json
import logging
import traceback
import uuid
from collections.abc import Callable
from pathlib import Path

from starlette.requests import ClientDisconnect

from mlpipe.runtime.logs import event
from mlpipe.serving.body import escaped

PROBES = frozenset({"/health", "/ready", "/metrics"})
RETRY_AFTER_S = 1
# A shed request's body up to this size is read and dropped, and its connection kept: a client retrying after
# Retry-After does not open a new one (under a burst, reconnections queue at the accept ahead of the probes)
DRAIN_MAX_BYTES = 64 << 10
JSON_MEDIA_TYPE = "application/json"


class BodyTooLarge(Exception):
    """Raised from `receive` once a streamed body passes the limit; answered 413 by GuardRequests."""


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The request's Content-Length, or None (absent, chunked; the server refuses malformed ones)."""
    for name, value in headers:
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


def too_large_rule(size: int | None, limit: int) -> str:
    """The 413's rule; `size` None when the body was streamed without a length."""
    if size is None:
        return f"payload of more than {limit} bytes is over the limit of {limit}"
    return f"payload of {size} bytes is over the limit of {limit}"


def media_type_rule(headers: list[tuple[bytes, bytes]]) -> str | None:
    """Why a JSON route refuses the request's Content-Type (415), or None when it is application/json
    (any parameters, e.g. `; charset=utf-8`)."""
    declared = next((value for name, value in headers if name == b"content-type"), None)
    media_type = (declared or b"").split(b";", 1)[0].strip().decode("latin-1").lower()
    if media_type == JSON_MEDIA_TYPE:
        return None
    sent = f"Content-Type {media_type!r}" if declared is not None else "no Content-Type"
    return f"{sent} (rule: the body must be sent as {JSON_MEDIA_TYPE})"


def shed_rule(in_flight: int, limit: int) -> str:
    return (
        f"{in_flight} requests in progress, at the limit of {limit} (rule: --max-concurrency sheds what is "
        f"beyond it; retry after {RETRY_AFTER_S} s)"
    )


class Admission:
    """The requests in progress against the shedding limit (`limit`; None: no limit), shared by GuardRequests,
    which counts them, and the connection protocol (`serving.connections`), which sheds a request as soon as
    its headers are parsed while the limit is reached, counting the application tasks it started (a burst's
    requests are all parsed before the first of their tasks runs): the excess costs the event loop ~30 us a
    request there instead of ~0.3 ms through the application. `on_shed(path)`: counts a shed request."""

    def __init__(self, limit: int | None, probes=PROBES, on_shed: Callable[[str], None] = lambda path: None):
        self.limit, self.probes, self.on_shed = limit, probes, on_shed
        self.in_flight = 0

    def sheds(self, path: str, in_flight: int | None = None) -> bool:
        """True when a request for `path` is over the limit (`in_flight`: the count to judge by, else the
        requests GuardRequests has in progress)."""
        count = self.in_flight if in_flight is None else in_flight
        return self.limit is not None and count >= self.limit and path not in self.probes

    def shed_answer(self, path: str, in_flight: int | None = None) -> tuple[int, str, bytes, list]:
        """(status, content type, body, extra headers) of a shed request, counted."""
        self.on_shed(path)
        rule = shed_rule(self.in_flight if in_flight is None else in_flight, self.limit)
        body = json.dumps({"detail": [{"field": "<service>", "rule": rule}]}).encode()
        return 503, "application/json", body, [(b"retry-after", str(RETRY_AFTER_S).encode())]


def failure_site(exc: BaseException) -> str:
    """`file.py:line` of the innermost frame the exception passed through."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


async def _answer(
    send, status: int, body: bytes, content_type: bytes, extra: list | None = None, close: bool = True
) -> None:
    # connection: close: whatever is left of the body is never read
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        *([(b"connection", b"close")] if close else []),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def answer_json(
    send, status: int, content: dict, extra: list | None = None, close: bool = True
) -> None:
    await _answer(send, status, json.dumps(content).encode(), b"application/json", extra, close)


async def drained(receive, declared: int | None, limit: int = DRAIN_MAX_BYTES) -> bool:
    """Read and drop a request's body of at most `limit` declared bytes; True when it was all read (the
    connection can then serve the client's next request), False when it is larger or of unknown length."""
    if declared is None or declared > limit:
        return False
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return False
        if not message.get("more_body", False):
            return True


class GuardRequests:
    def __init__(
        self,
        app,
        max_bytes: int,
        max_in_flight: int | None = None,
        probes=PROBES,
        json_paths: frozenset[str] = frozenset(),
        admission: Admission | None = None,
    ):
        self.app, self.max_bytes, self.json_paths = app, max_bytes, json_paths
        self.admission = admission or Admission(max_in_flight, probes)

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        admission = self.admission
        if admission.sheds(scope["path"]):
            rule = shed_rule(admission.in_flight, admission.limit)
            retry = [(b"retry-after", str(RETRY_AFTER_S).encode())]
            keep = await drained(receive, declared_length(scope["headers"]))
            await answer_json(send, 503, {"detail": [{"field": "<service>", "rule": rule}]}, retry, not keep)
            return
        limit = self.max_bytes
        declared = declared_length(scope["headers"])
        if declared is not None and declared > limit:
            await answer_json(
                send, 413, {"detail": [{"field": "<body>", "rule": too_large_rule(declared, limit)}]}
            )
            return
        if scope["path"] in self.json_paths and scope.get("method") in ("POST", "PUT", "PATCH"):
            rule = media_type_rule(scope["headers"])
            if rule:
                await answer_json(send, 415, {"detail": [{"field": "<content-type>", "rule": rule}]})
                return
        received, started = 0, False

        async def limited_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(received)
            return message

        async def tracked_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        admission.in_flight += 1
        try:
            await self.app(scope, limited_receive, tracked_send)
        except BodyTooLarge:
            if not started:
                await answer_json(
                    send, 413, {"detail": [{"field": "<body>", "rule": too_large_rule(None, limit)}]}
                )
        except ClientDisconnect:
            pass  # the client left before its body arrived: nobody to answer
        except Exception as exc:  # noqa: BLE001 - every unexpected error is a counted, logged 500
            await self._failed(scope, send, exc, started)
        finally:
            admission.in_flight -= 1

    async def _failed(self, scope, send, exc: Exception, started: bool) -> None:
        request_id = uuid.uuid4().hex
        event(
            "request_failed",
            level=logging.ERROR,
            request_id=request_id,
            method=scope.get("method"),
            path=scope.get("path"),
            error=escaped(f"{type(exc).__name__}: {exc}".splitlines()[0], 300),
            at=failure_site(exc),
        )
        if started:  # the status line is out: the connection is all that can still be closed
            raise exc
        rule = f"internal error (request id {request_id}: the service log has its cause)"
        await answer_json(
            send,
            500,
            {"detail": [{"field": "<service>", "rule": rule}], "request_id": request_id},
            [(b"x-request-id", request_id.encode())],
        )
