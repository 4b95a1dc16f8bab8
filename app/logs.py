"""Logging: one line per record on stdout, fields as key=value (logfmt) for grep and log drains."""

from __future__ import annotations

import logging
import sys

FORMAT = "%(asctime)s %(levelname)s [%(process)d] %(name)s: %(message)s"


def configure(level: str, *, stderr: bool = False) -> None:
    """Send the app's logs to stdout (stderr for commands) at `level`; libraries at WARNING."""
    root = logging.getLogger()
    if not any(getattr(h, "_bot_handler", False) for h in root.handlers):
        handler = logging.StreamHandler(sys.stderr if stderr else sys.stdout)
        handler.setFormatter(logging.Formatter(FORMAT))
        handler._bot_handler = True
        root.addHandler(handler)
    root.setLevel(level)
    for noisy in ("twilio.http_client", "urllib3", "alembic.runtime.migration"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))


def kv(**fields) -> str:
    """Format fields as `key=value` pairs, quoting values that contain spaces or quotes."""
    parts = []
    for key, value in fields.items():
        text = "-" if value is None or value == "" else str(value)
        if any(c in text for c in ' "=\n'):
            text = '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'
        parts.append(f"{key}={text}")
    return " ".join(parts)
