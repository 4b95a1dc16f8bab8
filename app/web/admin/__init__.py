"""The operator dashboard at /admin: server-rendered pages (Jinja), a login with the
ADMIN_TOKEN as password, a session cookie, CSRF-protected forms, CSS served by the app.

    auth.py    login, logout, the session cookie and the CSRF token
    views.py   the pages: conversations, a timeline, failures, replies, the queue, the switch
    chart.py   delivered versus failed per hour, as an SVG drawn on the server

Not registered at all without ADMIN_TOKEN (404).
"""

from flask import Blueprint, Flask

from ...services import services
from . import auth, views

bp = Blueprint("admin", __name__, url_prefix="/admin", template_folder="templates",
               static_folder="static", static_url_path="/static")
auth.install(bp)
views.install(bp)


def init_app(app: Flask) -> None:
    """Serve the dashboard only when ADMIN_TOKEN is set (404 otherwise)."""
    if services(app).settings.web.admin_token:
        auth.configure_session(app)
        app.register_blueprint(bp)
