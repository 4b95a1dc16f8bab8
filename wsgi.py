"""The WSGI entry point: `gunicorn wsgi:app`, and `flask --app wsgi <command>`."""

import sys
import time

from app import create_app
from config import ConfigError

# A replacement worker that cannot load the configuration waits this long before it
# exits (gunicorn then forks another): a retry every few seconds, not a busy loop.
REPLACEMENT_PAUSE_SECONDS = 5.0

try:
    app = create_app()
except ConfigError as exc:
    print(f"cannot start: {exc}", file=sys.stderr, flush=True)
    from app.server import replacement

    if replacement.REPLACEMENT:  # gunicorn.conf.py's post_fork
        # The server runs (its other workers loaded the configuration when it was
        # whole): exit 1 (gunicorn forks another worker, which tries again), not 3.
        time.sleep(REPLACEMENT_PAUSE_SECONDS)
        raise SystemExit(1) from None
    raise SystemExit(3) from None  # gunicorn: a worker that cannot boot halts the server
