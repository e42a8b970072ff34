"""Log output: plain text for a person at a terminal, or JSON lines for a log collector
(``MOTCUA_LOG_FORMAT=json``), each record carrying the id of the web request it belongs to.

The request id is set by ``bot.web``'s middleware in a context variable, so every record
written while a request is handled (by any module) carries it without being passed around.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import uuid
from contextvars import ContextVar
from typing import IO

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
# A request id from a proxy or a client is kept when it reads like an id; anything else
# (long, spaces, quotes, control characters) could forge or garble log lines.
_SANE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,127}")
REQUEST_ID: ContextVar[str] = ContextVar("request_id", default="")


def request_id(given: str | None) -> str:
    """``given`` (an ``X-Request-Id`` header) when it is a sane id, else a new one."""
    if given and _SANE_ID.fullmatch(given):
        return given
    return uuid.uuid4().hex


class _RequestIdFilter(logging.Filter):
    """Puts the current request id on every record (``record.request_id``, "" outside one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.request_id = REQUEST_ID.get()
        return True


class TextFormatter(logging.Formatter):
    """The usual one-line format, with ``[request id]`` after the logger inside a request."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        line = super().format(record)
        rid = getattr(record, "request_id", "")
        if rid:
            head, sep, tail = line.partition(f" {record.name}: ")
            line = f"{head} {record.name} [{rid}]: {tail}" if sep else f"{line} [{rid}]"
        return line


class JsonFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC, ISO 8601), ``level``, ``logger``, ``message``,
    ``request_id`` (when inside a request) and ``exception`` (its traceback, when any)."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(
                timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        rid = getattr(record, "request_id", "")
        if rid:
            entry["request_id"] = rid
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def make_handler(log_format: str, stream: IO[str] | None = None) -> logging.Handler:
    """A handler writing to ``stream`` (default stderr) in ``log_format`` ("text" or
    "json"); SystemExit names the variable when it is neither."""
    if log_format not in FORMATS:
        raise SystemExit("MOTCUA_LOG_FORMAT must be text or json")
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    handler.addFilter(_RequestIdFilter())
    return handler


def configure(log_format: str, level: int = logging.INFO) -> None:
    """Send the root logger's records to stderr in ``log_format`` ("text" or "json")."""
    handler = make_handler(log_format)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level)
