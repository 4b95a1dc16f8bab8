"""Logging, in one module: where lines go, what they look like, and what they may show.

    configure(level, log_format)   the app's one handler (stdout; stderr for commands),
                                   its formatter and the log context, set once
    kv(reply_id=7, ...)            fields as `key=value`, untrusted values escaped
    log_context(**fields)          every line written inside the block carries them
    without_query(url)             a URL as a line may show it (no query string)
    push_context / pop_context     a context opened and closed in two callbacks

    with log_context(conversation_sid="CH...", message_sid="IM...", request_id="..."):
        log.info("reply sent %s", kv(reply_id=7))   # the line carries the three fields

The context lives in a contextvar: it follows one request's thread, or one asyncio task
(each task starts with a copy of its creator's context), and nothing else. It does not
cross into another thread by itself (group commit's, an executor's): carry the values
there and open a context again. Empty values are left out; an inner context adds to
(and overrides) the outer one.

LOG_FORMAT=text (the default): one line per record, `FORMAT`, then the context as
`key=value` (a field the message itself already shows, under its name or another, is not
repeated: `conversation=CH...` stands for `conversation_sid=CH...`).
LOG_FORMAT=json: one JSON object per line (python-json-logger): time, level, logger,
pid, message, then the context's fields and any `extra=`; a traceback is `exc_info`.
The names of the formats are the settings' (config.LOG_FORMATS).
"""

from __future__ import annotations

import logging
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar, Token
from types import MappingProxyType

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter as _JsonFormatter

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
_QUERY = re.compile(r"[?#]")
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
        super().__init__(FORMAT)

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


def configure(level: str, log_format: str = "text", *, stderr: bool = False,
              serving: bool = False) -> None:
    """Send the app's logs to stdout (stderr for commands) at `level`, as `log_format`
    lines (text or json) that carry the log context; libraries at WARNING.

    Serving, records skip what no line here shows (caller, thread and process names) and
    take the process id from a cache: at hundreds of webhooks a second, each worth a
    log line, that is a few per cent of the CPU (see the logging HOWTO, "Optimization").
    """
    root = logging.getLogger()
    handler = next((h for h in root.handlers if getattr(h, "_bot_handler", False)), None)
    if handler is None:
        handler = logging.StreamHandler(sys.stderr if stderr else sys.stdout)
        handler._bot_handler = True
        root.addHandler(handler)
    install(handler, log_format)
    if serving:
        logging._srcfile = None  # no findCaller(): FORMAT has no file, line or function
        logging.logThreads = logging.logMultiprocessing = logging.logProcesses = False
        factory = logging.getLogRecordFactory()
        if not isinstance(factory, _RecordWithPid):
            logging.setLogRecordFactory(_RecordWithPid(factory))
    root.setLevel(level)
    for noisy in ("twilio.http_client", "urllib3", "alembic"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def without_query(url: str) -> str:
    """The URL or request target as a log line may show it: its query string (and any
    fragment) replaced by `?[redacted]`. A query may carry a token (`?token=...`), and
    nothing any route takes in its query is worth keeping in a log."""
    query = _QUERY.search(url)
    return url if query is None else url[:query.start()] + "?[redacted]"


def printable(text: str) -> str:
    """Escape every control and non-ASCII character (`\\r` -> `\\x0d`, `é` -> `\\u00e9`)
    and the backslash itself: untrusted values reach log lines and response headers,
    and must not forge either."""
    if text.isascii() and text.isprintable() and "\\" not in text:
        return text
    return "".join(c if " " <= c <= "~" and c != "\\" else _escape(c) for c in text)


def _escape(c: str) -> str:
    if c == "\\":
        return "\\\\"
    n = ord(c)
    return f"\\x{n:02x}" if n < 0x100 else f"\\u{n:04x}" if n < 0x10000 else f"\\U{n:08x}"


def kv(**fields) -> str:
    """Format fields as `key=value` pairs, quoting values that contain spaces or quotes;
    control and non-ASCII characters are escaped (see `printable`)."""
    parts = []
    for key, value in fields.items():
        text = "-" if value is None or value == "" else printable(str(value))
        if any(c in text for c in ' "='):
            text = '"' + text.replace('"', '\\"') + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)


class _RecordWithPid:
    """A record factory that stamps the process id read once per process (and after a
    fork), for every logger: gunicorn's lines show it too."""

    def __init__(self, factory) -> None:
        self.factory = factory
        self._read_pid()
        os.register_at_fork(after_in_child=self._read_pid)

    def _read_pid(self) -> None:
        self.pid = os.getpid()

    def __call__(self, *args, **kwargs) -> logging.LogRecord:
        record = self.factory(*args, **kwargs)
        record.process = self.pid
        return record
