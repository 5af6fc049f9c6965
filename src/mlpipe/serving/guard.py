"""The request path's guard (pure ASGI, inside the metrics middleware so everything it answers is counted):

- load shedding: more than `max_in_flight` requests at once get an immediate 503, except the probes
  (/health, /ready, /metrics), which always answer; idle connections count for nothing here (they are
  cut by the connection deadlines, `serving.connections`);
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
from pathlib import Path

from starlette.requests import ClientDisconnect

from mlpipe.runtime.logs import event
from mlpipe.serving.body import escaped

PROBES = frozenset({"/health", "/ready", "/metrics"})


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


def failure_site(exc: BaseException) -> str:
    """`file.py:line` of the innermost frame the exception passed through."""
    frames = traceback.extract_tb(exc.__traceback__)
    return f"{Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else "?"


async def _answer(send, status: int, body: bytes, content_type: bytes, extra: list | None = None) -> None:
    # connection: close: whatever is left of the body is never read
    headers = [
        (b"content-type", content_type),
        (b"content-length", str(len(body)).encode()),
        (b"connection", b"close"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


async def answer_json(send, status: int, content: dict, extra: list | None = None) -> None:
    await _answer(send, status, json.dumps(content).encode(), b"application/json", extra)


class GuardRequests:
    def __init__(self, app, max_bytes: int, max_in_flight: int | None = None, probes=PROBES):
        self.app, self.max_bytes, self.max_in_flight, self.probes = app, max_bytes, max_in_flight, probes
        self.in_flight = 0

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if (
            self.max_in_flight is not None
            and self.in_flight >= self.max_in_flight
            and scope["path"] not in self.probes
        ):
            # the same answer uvicorn's limit_concurrency gives
            await _answer(send, 503, b"Service Unavailable", b"text/plain; charset=utf-8")
            return
        limit = self.max_bytes
        declared = declared_length(scope["headers"])
        if declared is not None and declared > limit:
            await answer_json(
                send, 413, {"detail": [{"field": "<body>", "rule": too_large_rule(declared, limit)}]}
            )
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

        self.in_flight += 1
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
            self.in_flight -= 1

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
