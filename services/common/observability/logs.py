"""Structured logs: one JSON object per line on stdout, each naming its service and request.

Every record goes through one handler on the root logger, uvicorn's included, so a log
collector reads one format. A line holds `time` (RFC 3339, UTC), `level`, `logger`, `message`,
`service`, `request_id` when logged while a request is handled (`trace_id` and `span_id` too
when it is traced), whatever the call passed in `extra=` (the access log's `method`, `route`,
`path`, `status`, `duration_ms`), and `exc_info` for an exception.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, TextIO

from opentelemetry import trace
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter

from services.common.observability.request_id import current_request_id

# The loggers uvicorn writes to: routed to the root handler instead of uvicorn's own.
UVICORN_LOGGERS = ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi")
# uvicorn's levels beyond the standard ones; "trace" is below DEBUG.
_LEVELS = {"trace": 5}
# uvicorn adds a copy of its message with terminal colours: noise in a JSON line.
_DROPPED = [*RESERVED_ATTRS, "color_message", "taskName"]
_TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


class ContextFilter(logging.Filter):
    """Adds the service's name, the current request's id and trace to each record passing by."""

    def __init__(self, service: str) -> None:
        super().__init__()
        self.service = service

    def filter(self, record: logging.LogRecord) -> bool:
        """Annotate the record; never drop it."""
        record.service = self.service
        if getattr(record, "request_id", None) is None:
            request_id = current_request_id()
            if request_id is not None:
                record.request_id = request_id
        # Without tracing this is the invalid span: a dictionary lookup, nothing added.
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = format(context.trace_id, "032x")
            record.span_id = format(context.span_id, "016x")
        return True


class JsonLineFormatter(JsonFormatter):
    """python-json-logger's formatter, with this project's field names, time first."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "message"],
            rename_fields={"levelname": "level", "name": "logger"},
            reserved_attrs=_DROPPED,
            timestamp="time",
        )

    def process_log_record(self, log_data: dict[str, Any]) -> dict[str, Any]:
        """Put `time` first, as a person reading the stream expects."""
        return {"time": log_data.pop("time"), **log_data}


def level_number(level: str | int) -> int:
    """The number of a level named as settings name it: "info", "WARNING", "trace", or 20."""
    if isinstance(level, int):
        return level
    name = level.strip().lower()
    if name in _LEVELS:
        return _LEVELS[name]
    number = logging.getLevelNamesMapping().get(name.upper())
    if number is None:
        raise ValueError(f"unknown log level {level!r}")
    return number


def configure_logging(
    service: str, level: str | int = "info", json: bool = True, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send every log record, uvicorn's too, to one handler on stdout (JSON unless told not)."""
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.addFilter(ContextFilter(service))
    if json:
        handler.setFormatter(JsonLineFormatter())
    else:
        # For a person at a terminal (`make run`): the same facts on a readable line.
        handler.setFormatter(logging.Formatter(_TEXT_FORMAT, defaults={"request_id": "-"}))
    root = logging.getLogger()
    # Replaces whatever was there, as logging.basicConfig(force=True) does: one stream, one format.
    for old in root.handlers[:]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(level_number(level))
    for name in UVICORN_LOGGERS:
        logger = logging.getLogger(name)
        logger.handlers.clear()
        logger.propagate = True
        logger.setLevel(logging.NOTSET)  # the root's level decides; uvicorn.run may set its own
    # One access line per request comes from AccessLogMiddleware, with the route and the
    # request's id; uvicorn's would say less, twice. (uvicorn.run(access_log=False) agrees.)
    logging.getLogger("uvicorn.access").disabled = True
    return handler
