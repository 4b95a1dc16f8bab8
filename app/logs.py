"""Logging: one line per record on stdout, fields as key=value (logfmt) for grep and log drains."""

from __future__ import annotations

import logging
import os
import re
import sys

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"
_QUERY = re.compile(r"[?#]")


def configure(level: str, *, stderr: bool = False, serving: bool = False) -> None:
    """Send the app's logs to stdout (stderr for commands) at `level`; libraries at WARNING.

    Serving, records skip what no line here shows (caller, thread and process names) and
    take the process id from a cache: at hundreds of webhooks a second, each worth a
    log line, that is a few per cent of the CPU (see the logging HOWTO, "Optimization").
    """
    root = logging.getLogger()
    if not any(getattr(h, "_bot_handler", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr if stderr else sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._bot_handler = True
        root.addHandler(handler)
    if serving:
        logging._srcfile = None  # no findCaller(): FORMAT has no file, line or function
        logging.logThreads = logging.logMultiprocessing = logging.logProcesses = False
        factory = logging.getLogRecordFactory()
        if not isinstance(factory, _RecordWithPid):
            logging.setLogRecordFactory(_RecordWithPid(factory))
    root.setLevel(level)
    for noisy in ("twilio.http_client", "urllib3", "alembic.runtime.migration"):
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
