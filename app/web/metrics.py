"""GET /metrics: the Prometheus scrape, behind ADMIN_TOKEN.

    no ADMIN_TOKEN set             -> 404 (as if there were no such page)
    Authorization: Bearer <token>  -> 200, Prometheus text format
    anything else                  -> 401

With METRICS_PORT set, the same text is also served on that port without a token
(bound to METRICS_HOST, loopback by default): see app/observability/exposition.py.
"""

from __future__ import annotations

import hmac

from flask import Blueprint, abort, request

from ..observability import exposition
from ..services import services

bp = Blueprint("metrics", __name__)


@bp.get("/metrics")
def scrape():
    settings = services().settings
    token = settings.web.admin_token
    if not token:
        abort(404)
    if not authorized(request.headers.get("Authorization", ""), token):
        return ("401 Unauthorized: send Authorization: Bearer <ADMIN_TOKEN>\n", 401,
                {"WWW-Authenticate": 'Bearer realm="metrics"',
                 "Content-Type": "text/plain; charset=utf-8"})
    body, content_type = exposition.render(services().db, settings.sender.lease_seconds)
    return body, 200, {"Content-Type": content_type, "Cache-Control": "no-store"}


def authorized(header: str, token: str) -> bool:
    """Whether `header` is `Bearer <token>` (compared in constant time)."""
    scheme, _, given = header.partition(" ")
    return scheme.lower() == "bearer" and hmac.compare_digest(
        given.strip().encode(), token.encode())
