"""GET /metrics: the Prometheus scrape, behind ADMIN_TOKEN.

    no ADMIN_TOKEN set             -> 404 (as if there were no such page)
    Authorization: Bearer <token>  -> 200, Prometheus text format
    anything else                  -> 401; 429 after too many wrong tokens (throttle.py)

With METRICS_PORT set, the same text is also served on that port without a token
(bound to METRICS_HOST, loopback by default): see app/observability/exposition.py.
"""

from __future__ import annotations

from flask import Blueprint, Flask, abort

from ..delivery import registry
from ..observability import exposition
from ..services import services
from . import bearer

bp = Blueprint("metrics", __name__)


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)


@bp.get("/metrics")
def scrape():
    bot = services()
    if not bot.settings.web.admin_token:
        abort(404)
    bearer.require("metrics")
    body, content_type = exposition.render(
        bot.db, registry.live_senders(bot.settings.sender.lease_seconds))
    return body, 200, {"Content-Type": content_type}
