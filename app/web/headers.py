"""Security headers on the operator's surfaces, set on every response by path, so that
redirects, errors and pages that do not exist carry them as well as the pages do.

    /admin...          Content-Security-Policy (no script at all, styles and images from
                       the app only, forms post only to it, never framed),
                       X-Frame-Options: DENY, X-Content-Type-Options: nosniff,
                       Referrer-Policy: no-referrer, Cache-Control: no-store (not on
                       /admin/static: the stylesheet and icon may be cached)
    /api/, /metrics    X-Content-Type-Options: nosniff, Cache-Control: no-store, and a
                       CSP that runs nothing and may not be framed

Webhooks and /healthz answer machines that read the status only: left as they are.
"""

from __future__ import annotations

from flask import Flask, Response, request

DASHBOARD_CSP = ("default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
                 "frame-ancestors 'none'; base-uri 'none'")
DATA_CSP = "default-src 'none'; frame-ancestors 'none'"
DASHBOARD = {
    "Content-Security-Policy": DASHBOARD_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
DATA = {"Content-Security-Policy": DATA_CSP, "X-Content-Type-Options": "nosniff",
        "Cache-Control": "no-store"}


def init_app(app: Flask) -> None:
    app.after_request(add_headers)


def add_headers(response: Response) -> Response:
    path = request.path
    if path == "/admin" or path.startswith("/admin/"):
        response.headers.update(DASHBOARD)
        if not path.startswith("/admin/static/"):
            response.headers["Cache-Control"] = "no-store"
    elif path.startswith("/api/") or path == "/metrics":
        response.headers.update(DATA)
    return response
