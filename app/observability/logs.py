"""Log context and log formats: every line says which conversation, message and request
it is about, as `key=value` text or as one JSON object.

    with log_context(conversation_sid="CH...", message_sid="IM...", request_id="..."):
        log.info("reply sent %s", kv(reply_id=7))   # the line carries the three fields

The context lives in a contextvar: it follows one request's thread, or one asyncio task
(each task starts with a copy of its creator's context), and nothing else. It does not
cross into another thread by itself (group commit's, an executor's): carry the values
there and open a context again. Empty values are left out; an inner context adds to
(and overrides) the outer one.

LOG_FORMAT=text (the default): the usual line, then the context as `key=value` (a field
the message itself already shows, under its name or another, is not repeated:
`conversation=CH...` stands for `conversation_sid=CH...`).
LOG_FORMAT=json: one JSON object per line (python-json-logger): time, level, logger,
pid, message, then the context's fields and any `extra=`; a traceback is `exc_info`.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

from ..logs import kv

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
_EMPTY: Mapping[str, str] = MappingProxyType({})
_CONTEXT: ContextVar[Mapping[str, str]] = ContextVar("log_context", default=_EMPTY)
_ATTR = "log_context"


@contextmanager
def log_context(**fields: object) -> Iterator[Mapping[str, str]]:
    """Add `fields` to every log line written inside the block (this thread or task)."""
    token = push_context(**fields)
    try:
        yield _CONTEXT.get()
    finally:
        _CONTEXT.reset(token)


def current_context() -> Mapping[str, str]:
    """The fields every line written here carries now."""
    return _CONTEXT.get()


class ContextFilter(logging.Filter):
    """Stamp each record with the context of the code that wrote it (on the handler, so
    it sees every logger's records; it never drops one)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not hasattr(record, _ATTR):
            setattr(record, _ATTR, _CONTEXT.get())
        return True


class TextFormatter(logging.Formatter):
    """The classic line, with the context appended as `key=value`."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def formatMessage(self, record: logging.LogRecord) -> str:  # noqa: N802 - logging's name
        if record.process is None:  # made while logProcesses was off, not by our factory
            record.process = os.getpid()
        line = super().formatMessage(record)
        context = getattr(record, _ATTR, None)
        if context:
            message = record.message
            extra = {k: v for k, v in context.items() if not _shows(message, k, v)}
            if extra:
                line += " " + kv(**extra)
        return line


def _shows(message: str, key: str, value: str) -> bool:
    """Whether the message shows this field already: by its name (`conversation_sid=`),
    or by its value under another name (`conversation=CH...`, `ConversationSid=CH...`)."""
    if f"{key}=" in message:
        return True
    needle = "=" + value
    at = message.find(needle)
    while at >= 0:
        end = at + len(needle)
        if end == len(message) or message[end] == " ":
            return True
        at = message.find(needle, end)
    return False


class JsonFormatter(_JsonFormatter):
    """One JSON object per record: time (UTC, ISO 8601), level, logger, pid, message,
    the context's fields, then whatever the call passed in `extra=`."""

    def __init__(self) -> None:
        super().__init__(
            ["levelname", "name", "process", "message"],
            rename_fields={"levelname": "level", "name": "logger", "process": "pid"},
            timestamp="time", reserved_attrs=[*RESERVED_ATTRS, _ATTR],
            json_ensure_ascii=False)

    def add_fields(self, log_data, record, message_dict) -> None:
        log_data["time"] = None  # first in each line, set by the base class below
        context = getattr(record, _ATTR, _EMPTY)
        super().add_fields(log_data, record, {**context, **message_dict})


def formatter(log_format: str) -> logging.Formatter:
    """The formatter for LOG_FORMAT (`text` or `json`)."""
    return JsonFormatter() if log_format == "json" else TextFormatter()


def install(handler: logging.Handler, log_format: str) -> None:
    """Make `handler` write `log_format` lines that carry the log context."""
    handler.setFormatter(formatter(log_format))
    if not any(isinstance(f, ContextFilter) for f in handler.filters):
        handler.addFilter(ContextFilter())


def push_context(**fields: object) -> Token:
    """Add `fields` until `pop_context(token)`: for a context that opens and closes in
    two callbacks (Flask's before_request and teardown_request); else use log_context."""
    added = {k: str(v) for k, v in fields.items() if v is not None and v != ""}
    return _CONTEXT.set(MappingProxyType({**_CONTEXT.get(), **added}))


def pop_context(token: Token) -> None:
    _CONTEXT.reset(token)


def use_format(log_format: str) -> None:
    """Give the app's own log handler (app/logs.py `configure`) this format and the
    log context."""
    for handler in logging.getLogger().handlers:
        if getattr(handler, "_bot_handler", False):
            install(handler, log_format)
