"""The WSGI entry point: `gunicorn wsgi:app`, and `flask --app wsgi <command>`."""

import sys

from app import create_app
from config import ConfigError

try:
    app = create_app()
except ConfigError as exc:
    print(f"cannot start: {exc}", file=sys.stderr, flush=True)
    raise SystemExit(3) from None  # gunicorn: a worker that cannot boot halts the server
