"""Deadlines for the service's connections (uvicorn's httptools protocol, with what it lacks).

uvicorn 0.54 arms its keep-alive timeout only after a response: a connection that never sends a request
stays open for ever, and nothing bounds how long a request's headers and body may take to arrive (a
slowloris) or how large the headers grow. Here:

- idle: a connection with no request in progress is closed after `idle_s`, from the moment it opens
  as well as between requests (uvicorn's timeout_keep_alive);
- slow: a request whose headers and body have not all arrived `request_s` after its first byte is
  answered 408 and its connection closed;
- headers over `max_header_bytes` (request line included) are answered 431 and the connection closed;
- more than `max_connections` open: the one idle longest is closed to make room (none idle: the new
  one is), so a flood of idle sockets cannot keep /health from answering; logged (one line per 10 s at
  most). `connection_bound` lowers the bound to what the process's file descriptor limit leaves room for:
  out of descriptors, uvicorn's loop (libuv) accepts each new connection and resets it at once, /health
  included, and logs nothing;
- probes: a GET of a path in `probes` (/health, /ready, /metrics: `serving.probes`) is answered here, as
  soon as its headers are parsed (its connection kept alive or closed as the client asks): it never waits
  in the event loop's queue of application tasks behind a burst of /predict;
- shedding: while `admission`'s limit is reached, any other request is answered 503 here, the same way, its
  body dropped as it arrives (`serving.guard.Admission`)."""

from __future__ import annotations

import logging
import os
import resource
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import httptools
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from mlpipe.runtime.logs import event
from mlpipe.serving.guard import DRAIN_MAX_BYTES, Admission, declared_length

# Descriptors kept for the service itself beyond those open at start: the log database's pooled connections
# (SQLite: the file, its -wal and -shm each), the spool's segment and lock, a model reload's files, the
# tracking store's connections.
FD_RESERVE = 32
LIMIT_LOG_EVERY_S = 10.0


@dataclass(frozen=True)
class ConnectionLimits:
    idle_s: float = 5.0
    request_s: float = 30.0
    max_header_bytes: int = 64 * 1024
    max_connections: int = 1000


def open_descriptors() -> int:
    """How many file descriptors this process holds now (0 when /proc cannot tell)."""
    try:
        return len(os.listdir("/proc/self/fd"))
    except OSError:
        return 0


def connection_bound(asked: int, reserve: int = FD_RESERVE) -> tuple[int, str | None]:
    """The open-connection bound to use: `asked`, or less when the file descriptor limit (RLIMIT_NOFILE)
    leaves room for fewer beside the descriptors open now and `reserve`; with the reason when lowered."""
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return asked, None
    in_use = open_descriptors()
    room = soft - in_use - reserve
    if room >= asked:
        return asked, None
    bound = max(1, room)
    return bound, (
        f"open files limit {soft} (ulimit -n), {in_use} in use, {reserve} kept for the service: at most "
        f"{bound} connections (rule: a connection beyond them closes the one idle longest)"
    )


class _HeadersTooLarge(Exception):
    pass


def _refusal(status: int, reason: str, text: str) -> bytes:
    body = text.encode()
    return (
        f"HTTP/1.1 {status} {reason}\r\ncontent-type: text/plain; charset=utf-8\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    ).encode() + body


def early_reply(
    status: int, media_type: str, body: bytes, extra: list | None = None, keep_alive: bool = False
) -> bytes:
    """An answer given before the application as an HTTP/1.1 response (`extra`: more headers as byte
    pairs; its connection closed unless `keep_alive`)."""
    reason = {200: "OK", 503: "Service Unavailable"}.get(status, "Status")
    head = [b"content-type: " + media_type.encode(), b"content-length: %d" % len(body)]
    head += [name + b": " + value for name, value in extra or []]
    head += [] if keep_alive else [b"connection: close"]
    return (
        b"HTTP/1.1 %d %s\r\n" % (status, reason.encode())
        + b"".join(h + b"\r\n" for h in head)
        + b"\r\n"
        + body
    )


def small_body(headers: list[tuple[bytes, bytes]]) -> bool:
    """True when a request's body is absent or declared at most DRAIN_MAX_BYTES (not chunked)."""
    if any(name == b"transfer-encoding" for name, _ in headers):
        return False
    declared = declared_length(headers)
    return declared is None or declared <= DRAIN_MAX_BYTES


def guarded_protocol(  # noqa: C901 -- one protocol class: its early answers share state
    limits: ConnectionLimits,
    probes: Mapping[str, Callable[[], tuple[int, str, bytes]]] | None = None,
    admission: Admission | None = None,
) -> type:
    """uvicorn's httptools protocol with `limits` (pass it as uvicorn's `http=`); `probes`: path -> its
    answer, for the GETs answered before the application; `admission`: the application's shedding limit,
    applied here too (a request over it is answered 503 before the application sees it)."""
    probes = dict(probes or {})
    last_logged = [-LIMIT_LOG_EVERY_S]

    class GuardedHttpToolsProtocol(HttpToolsProtocol):
        def connection_made(self, transport) -> None:
            super().connection_made(transport)
            self._header_bytes = 0
            self._request_deadline = None
            self._probe_answered = False
            self._idle_since: float | None = self.loop.time()
            self._make_room()
            self._arm_idle()

        def connection_lost(self, exc) -> None:
            self._cancel_request_deadline()
            super().connection_lost(exc)

        def _make_room(self) -> None:
            if len(self.connections) <= limits.max_connections:
                return
            idle = [
                c for c in self.connections if c is not self and getattr(c, "_idle_since", None) is not None
            ]
            victim = min(idle, key=lambda c: c._idle_since) if idle else self
            victim.transport.close()
            if self.loop.time() - last_logged[0] >= LIMIT_LOG_EVERY_S:
                last_logged[0] = self.loop.time()
                event(
                    "connection_limit",
                    level=logging.WARNING,
                    open=len(self.connections),
                    limit=limits.max_connections,
                    closed="the one idle longest" if idle else "the new one (none idle)",
                )

        def _arm_idle(self) -> None:
            # uvicorn's own keep-alive timer slot: its data_received cancels it when bytes arrive
            self._unset_keepalive_if_required()
            self.timeout_keep_alive_task = self.loop.call_later(
                limits.idle_s, self.timeout_keep_alive_handler
            )

        def _cancel_request_deadline(self) -> None:
            if self._request_deadline is not None:
                self._request_deadline.cancel()
                self._request_deadline = None

        def _request_too_slow(self) -> None:
            self._request_deadline = None
            if not self.transport.is_closing():
                if not self._probe_answered and (self.cycle is None or not self.cycle.response_started):
                    self.transport.write(
                        _refusal(408, "Request Timeout", f"request not received within {limits.request_s} s")
                    )
                self.transport.close()

        def data_received(self, data: bytes) -> None:
            self._unset_keepalive_if_required()
            try:
                self.parser.feed_data(data)
            except httptools.HttpParserCallbackError as exc:
                if not isinstance(exc.__context__, _HeadersTooLarge):
                    raise
                self.transport.write(
                    _refusal(
                        431,
                        "Request Header Fields Too Large",
                        f"headers over the limit of {limits.max_header_bytes} bytes",
                    )
                )
                self.transport.close()
            except httptools.HttpParserError:
                self.logger.warning("Invalid HTTP request received.")
                self.send_400_response("Invalid HTTP request received.")
            except httptools.HttpParserUpgrade:
                if self._should_upgrade():
                    self.handle_websocket_upgrade()
                else:
                    self._unsupported_upgrade_warning()

        def on_message_begin(self) -> None:
            super().on_message_begin()
            self._probe_answered = False
            self._idle_since = None
            self._header_bytes = 0
            self._cancel_request_deadline()
            self._request_deadline = self.loop.call_later(limits.request_s, self._request_too_slow)

        def _count_header_bytes(self, n: int) -> None:
            self._header_bytes += n
            if self._header_bytes > limits.max_header_bytes:
                raise _HeadersTooLarge

        def on_url(self, url: bytes) -> None:
            self._count_header_bytes(len(url))
            super().on_url(url)

        def on_header(self, name: bytes, value: bytes) -> None:
            self._count_header_bytes(len(name) + len(value) + 4)
            super().on_header(name, value)

        def on_headers_complete(self) -> None:
            answer = self._early_answer() if probes or admission else None
            if answer is None:
                super().on_headers_complete()
                return
            self._probe_answered = True  # its body, if any, is dropped as it arrives (within request_s)
            # kept alive only when what is left of the request is small: a large body is not read to drop it
            keep_alive = self.parser.should_keep_alive() and small_body(self.headers)
            self.transport.write(early_reply(*answer, keep_alive=keep_alive))
            if not keep_alive:
                self.transport.close()

        def _early_answer(self) -> tuple | None:
            """(status, media type, body, extra headers) of a probe GET or of a request over the shedding
            limit, when nothing is in progress before it on this connection; else None (the application's)."""
            if self.cycle is not None and not self.cycle.response_complete:
                return None
            path = httptools.parse_url(self.url).path.decode("latin-1")
            # self.tasks: the server's application tasks in progress, all connections (uvicorn's own count)
            if admission is not None and admission.sheds(path, len(self.tasks)):
                return admission.shed_answer(path, len(self.tasks))
            answer = probes.get(path) if self.parser.get_method() == b"GET" else None
            try:
                return (*answer(), []) if answer is not None else None
            except Exception:  # noqa: BLE001 - the application answers it then (a counted, logged 500)
                return None

        def on_body(self, body: bytes) -> None:
            if not self._probe_answered:
                super().on_body(body)

        def on_message_complete(self) -> None:
            self._cancel_request_deadline()
            if not self._probe_answered:
                super().on_message_complete()
            else:  # answered already: the connection waits for its next request, as after any response
                self.on_response_complete()

        def on_response_complete(self) -> None:
            super().on_response_complete()  # arms uvicorn's keep-alive timer (timeout_keep_alive = idle_s)
            if not self.transport.is_closing() and not self.pipeline:
                self._idle_since = self.loop.time()

    return GuardedHttpToolsProtocol
