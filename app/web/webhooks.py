"""Webhook endpoints: check the origin, the body and the signature, then hand a plain
Event on.

Twilio answers need no body: 200 with an empty body publishes a pre-event unchanged and
acknowledges a post-event. `X-Webhook-Outcome` tells a human with curl what happened.
"""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, current_app, request
from werkzeug.datastructures import MultiDict

from ..errors import BadSignature, UnsupportedMedia
from ..logs import kv
from ..pipeline.events import PRE_EVENTS, Event
from ..services import services
from . import form, signature

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/conversations")
FORM = "application/x-www-form-urlencoded"
_HINTS = "webhook_hints"


@bp.record_once
def _install_hints(state) -> None:
    state.app.extensions[_HINTS] = signature.Hints()


def hints(app: Flask) -> signature.Hints:
    """The app's budget for explaining rejected signatures (one per process)."""
    return app.extensions[_HINTS]


@bp.post("", strict_slashes=False)
def post_event():
    event = verified_event()
    outcome = services().processor.process(event)
    return "", 200, {"X-Webhook-Outcome": outcome.header()}


@bp.post("/pre", strict_slashes=False)
def pre_event():
    event = verified_event()
    known = event.type in PRE_EVENTS
    log.log(logging.DEBUG if known else logging.INFO, "pre-event %s", kv(
        event=event.type, conversation=event.get("ConversationSid"),
        outcome="published unchanged" if known else "unknown pre-event, published unchanged"))
    return "", 200, {"X-Webhook-Outcome": "unchanged"}


def verified_event() -> Event:
    """Return the request as an Event, or raise: 403 for an origin not served here, 413
    for a body too large, 400 for a malformed form, 403 unless Twilio signed it, 415 for
    anything but a form, then 400 for a bad event."""
    bot = services()
    web = bot.settings.web
    try:
        urls = signature.signed_urls(request, web.public_base_urls)
    except signature.UnservedOrigin as exc:
        log.warning("webhook rejected %s", kv(
            reason=exc.message, remote=request.remote_addr,
            hint=f"set PUBLIC_BASE_URL=https://{exc.host} if Twilio calls this server there"))
        raise
    body = form.read_body(request, web.max_body_bytes)
    is_form = request.mimetype == FORM
    # Parsed once, strictly: repeated keys all count for the signature and the Event.
    params = form.parse(body) if is_form else MultiDict()
    sent = request.headers.get(signature.HEADER)
    validator = bot.validator
    try:
        signature.verify(validator, urls, params, sent)
    except BadSignature as exc:
        hint = (hints(current_app).explain(validator, urls[0], params, sent, len(body))
                if sent else None)
        log.warning("webhook rejected %s", kv(
            reason=exc.message, url_checked=" ".join(urls), remote=request.remote_addr,
            hint=hint))
        raise
    if not is_form:
        raise UnsupportedMedia(f"Content-Type must be {FORM}, got {request.mimetype or 'none'}")
    return Event.from_form(params, request.headers)
