"""gunicorn settings for the benchmark's other apps, the floor (A) and the naive design
(B): `gunicorn -c bench/gunicorn.conf.py bench.floor_app:app` (bench/run.py passes it).

The production settings (gunicorn.conf.py) and the same worker, without this app's
hooks (its background work and shared metrics). The worker's module is loaded from its
file rather than imported: importing app.server.worker would run app/__init__.py and
load the whole app into the master, and every worker forked from it would carry those
modules too (about 60 MB each, which the benchmark's memory column would then show).
For the same reason the access log is gunicorn's own (query strings shown; the cost of
a line differs by a few microseconds).
"""

import importlib.util
import runpy
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
HOOKS = {"on_starting", "post_worker_init", "worker_exit", "child_exit", "when_ready"}


def _worker_module():
    """app/server/worker.py (it imports only gunicorn), without importing `app`."""
    spec = importlib.util.spec_from_file_location("bench_worker",
                                                  ROOT / "app" / "server" / "worker.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


globals().update({name: value for name, value
                  in runpy.run_path(str(ROOT / "gunicorn.conf.py")).items()
                  if not name.startswith("_") and name not in HOOKS})
worker_class = _worker_module().BufferingThreadWorker
logger_class = "gunicorn.glogging.Logger"
