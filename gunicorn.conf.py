"""gunicorn settings, read automatically by `gunicorn wsgi:app` from this folder.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.
"""

import os

# Heroku (and most PaaS) give the port in $PORT; locally, stay on loopback.
bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:5000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 25  # under Heroku's 30 s: lets in-flight replies finish on SIGTERM
keepalive = 5
accesslog = "-"
# PROXY_COUNT (werkzeug's ProxyFix) alone decides which X-Forwarded-* headers to trust.
forwarded_allow_ips = ""
# One control socket per user would clash between instances on one machine.
control_socket_disable = True


def post_worker_init(worker):
    """Start the app's background work (the sender) in each worker, after the fork:
    never in the master, even with --preload."""
    if getattr(worker.wsgi, "import_name", None) != "app":
        return  # another app (the benchmark's floor): do not even import this one
    from app import start_background_work

    start_background_work(worker.wsgi)
