"""Who may see the dashboard: whoever knows ADMIN_TOKEN, once logged in.

The cookie is Flask's signed session (HttpOnly, SameSite=Lax, Secure when the public
URL is https, path /admin, 12 hours), signed with a key derived from ADMIN_TOKEN; it
carries a session id that must also be alive in the database (sessions.py), checked on
every request: logging out ends the session for every copy of the cookie on every
instance, and a new token ends them all. Every form carries the session's CSRF token; a
POST without it is refused (400). The token is checked as the API's is (../bearer.py:
throttled, compared in constant time, never logged).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets

from flask import Blueprint, Flask, g, redirect, render_template, request, session, url_for

from ...logs import kv
from ...services import services
from .. import bearer, params
from ..errors import Refused
from . import sessions

log = logging.getLogger(__name__)
OPEN = ("admin.login", "admin.static")  # reachable without a session


def configure_session(app: Flask) -> None:
    settings = services(app).settings
    token = settings.web.admin_token
    app.secret_key = hmac.new(token.encode(), b"conversations-bot admin session",
                              hashlib.sha256).hexdigest()
    app.config.update(
        SESSION_COOKIE_NAME="bot_admin", SESSION_COOKIE_PATH="/admin",
        SESSION_COOKIE_HTTPONLY=True, SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=any(u.startswith("https://")
                                  for u in settings.web.public_base_urls),
        PERMANENT_SESSION_LIFETIME=sessions.LIFETIME)


def csrf_token() -> str:
    if "csrf" not in session:
        session["csrf"] = secrets.token_urlsafe(32)
    return session["csrf"]


def install(bp: Blueprint) -> None:
    bp.app_context_processor(lambda: {"csrf_token": csrf_token,
                                      "here": lambda: params.here(request)})

    @bp.before_request
    def _guard():
        if request.method == "POST":
            sent = request.form.get("csrf", "")
            # As bytes: compare_digest refuses str with non-ASCII characters (a 500).
            if not (session.get("csrf") and hmac.compare_digest(
                    sent.encode(), str(session["csrf"]).encode())):
                log.warning("admin form refused %s", kv(reason="missing or wrong CSRF token",
                                                        path=request.path,
                                                        remote=request.remote_addr))
                raise Refused("400 Bad Request: the form expired: reload the page and try "
                              "again")
        if request.endpoint in OPEN:
            return None
        bot = services()
        g.signed_in = sessions.valid(bot.db, session.get("sid"), bot.settings.web.admin_token)
        if not g.signed_in:
            session.pop("sid", None)
            # Back to this page after the login; a form's URL cannot be loaded (GET).
            here = params.here(request) if request.method == "GET" else None
            return redirect(url_for("admin.login", next=here))
        return None

    @bp.route("/login", methods=["GET", "POST"])
    def login():
        error = None
        target = params.dashboard_path("next", request.args.get("next"))
        if request.method == "POST":
            reason = bearer.refusal(request.form.get("token", ""), "login")
            if reason is None:
                bot = services()
                sessions.revoke(bot.db, session.get("sid"))  # a new id at every login
                session.clear()
                session.permanent = True
                session["sid"] = sessions.start(bot.db, bot.settings.web.admin_token)
                session["csrf"] = secrets.token_urlsafe(32)
                log.info("admin login %s", kv(remote=request.remote_addr))
                return redirect(request.script_root + target if target
                                else url_for("admin.overview"))
            log.warning("admin login refused %s", kv(reason=reason,
                                                     remote=request.remote_addr))
            error = "That is not the admin token."
        return render_template("admin/login.html", error=error), 401 if error else 200

    @bp.post("/logout")
    def logout():
        sessions.revoke(services().db, session.get("sid"))
        session.clear()
        return redirect(url_for("admin.login"))
