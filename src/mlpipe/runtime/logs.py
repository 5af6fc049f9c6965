"""Structured operator logs: one `key=value` line per significant event."""

from __future__ import annotations

import logging
import sys
import time
from contextlib import contextmanager

LOGGER_NAME = "mlpipe"
_HANDLER_NAME = "mlpipe-stderr"


def configure_logging(level: int = logging.INFO) -> None:
    """Send mlpipe's events to stderr, one line each (called by entry points, never at import)."""
    logger = logging.getLogger(LOGGER_NAME)
    if not any(h.get_name() == _HANDLER_NAME for h in logger.handlers):
        handler = logging.StreamHandler(sys.stderr)
        handler.set_name(_HANDLER_NAME)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s", "%Y-%m-%dT%H:%M:%S"))
        logger.addHandler(handler)
    logger.setLevel(level)


class KnownFailuresInOneLine(logging.Filter):
    """Drops the traceback from a log record whose exception is a refusal mlpipe knows (an MlpipeError:
    its message already names the thing and the rule); anything else keeps its traceback (a bug)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from mlpipe.errors import MlpipeError

        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, MlpipeError):
            record.exc_info, record.exc_text = None, None
        return True


def hand_logging_to_prefect() -> None:
    """Inside a Prefect flow, Prefect's handlers (console + run logs in the UI) carry mlpipe's events
    (PREFECT_LOGGING_EXTRA_LOGGERS=mlpipe); once they are attached, drop ours so each line is printed
    once (while ours is the only handler, it stays). Prefect's handlers print a failed task's known
    refusal as its line, without the traceback Prefect adds."""
    logger = logging.getLogger(LOGGER_NAME)
    ours = [h for h in logger.handlers if h.get_name() == _HANDLER_NAME]
    if len(ours) < len(logger.handlers):
        for handler in ours:
            logger.removeHandler(handler)
    # Prefect's console handler sits on the root logger, its run-log (UI) handlers on these two
    prefect_handlers = [
        h for name in ("", "prefect.flow_runs", "prefect.task_runs") for h in logging.getLogger(name).handlers
    ]
    for handler in prefect_handlers:
        if not any(isinstance(f, KnownFailuresInOneLine) for f in handler.filters):
            handler.addFilter(KnownFailuresInOneLine())


def _fmt(value) -> str:
    text = str(value)
    return f'"{text}"' if (" " in text or not text) else text


def event(name: str, level: int = logging.INFO, **fields) -> None:
    """Log `event=<name> k=v ...`."""
    line = " ".join([f"event={name}", *(f"{k}={_fmt(v)}" for k, v in fields.items())])
    logging.getLogger(LOGGER_NAME).log(level, line)


@contextmanager
def timed(name: str, **fields):
    """Log `<name>_start`, then `<name>_end` with duration_s (or `<name>_failed` with the error)."""
    event(f"{name}_start", **fields)
    t0 = time.perf_counter()
    try:
        yield fields
    except BaseException as exc:
        event(
            f"{name}_failed",
            logging.ERROR,
            duration_s=round(time.perf_counter() - t0, 3),
            error=type(exc).__name__,
            **fields,
        )
        raise
    event(f"{name}_end", duration_s=round(time.perf_counter() - t0, 3), **fields)
