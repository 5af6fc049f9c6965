"""Every setting of `mlpipe serve` in one place: its default, its bound and what it does. The CLI's options
read their defaults, bounds and help from here (and each can come from an environment variable,
MLPIPE_<NAME>, as a container is configured); the service, the prediction log and the connection protocol
get their values from a ServeSettings. Imports pydantic only: `mlpipe --help` builds the options from it."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

MB = 1 << 20


class ServeSettings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    host: str = Field("127.0.0.1", description="The address to listen on (0.0.0.0: every interface).")
    port: int = Field(8000, ge=1, le=65535, description="The port to listen on.")
    spool_max_mb: float = Field(
        512.0, ge=0.001, description="The spool's bound; when full, /ready is false and /predict answers 503."
    )
    log_timeout_s: float = Field(
        2.0,
        ge=0.1,
        description="A log write waiting longer than this (lock, statement, connect) goes to the spool.",
    )
    max_records: int = Field(1000, ge=1, description="Records per /predict request; more is a 413.")
    poll_s: float = Field(5.0, ge=0.1, description="Seconds between polls of the champion alias.")
    max_concurrency: int = Field(
        64,
        ge=1,
        description="Requests at once beyond which new ones get 503 at once (naming the rule, Retry-After: "
        "1), so a burst cannot pile up (/health, /ready and /metrics always answer, ahead of the queue; idle "
        "connections do not count).",
    )
    max_bytes: int = Field(
        MB, ge=1, description="Body size limit of every request (413 above it, also when streamed)."
    )
    idle_timeout_s: float = Field(
        5.0,
        ge=0.1,
        description="A connection with no request in progress is closed after this (also before its first).",
    )
    request_timeout_s: float = Field(
        30.0,
        ge=0.1,
        description="A request's headers and body must all arrive within this (408 and closed otherwise).",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="Open connections beyond this close the one idle longest (or the new one); lowered, with "
        "a log line, to what the open files limit (ulimit -n) leaves room for.",
    )

    @property
    def spool_max_bytes(self) -> int:
        return int(self.spool_max_mb * MB)


SERVE = ServeSettings()  # the defaults


def env_name(name: str) -> str:
    """The environment variable a setting can come from: MLPIPE_MAX_RECORDS for max_records."""
    return f"MLPIPE_{name.upper()}"
