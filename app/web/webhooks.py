"""Webhook endpoints: check the signature first, then hand a plain Event on.

Twilio answers need no body: 200 with an empty body publishes a pre-event unchanged and
acknowledges a post-event. `X-Webhook-Outcome` tells a human with curl what happened.
"""

from __future__ import annotations

import logging

from flask import Blueprint, request

from ..errors import BadSignature, UnsupportedMedia
from ..logs import kv
from ..pipeline.events import PRE_EVENTS, Event
from ..services import services
from . import signature

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/conversations")
FORM = "application/x-www-form-urlencoded"


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
    """Return the request as an Event, or raise: 403 unless Twilio signed it, then 4xx."""
    bot = services()
    public = bot.settings.web.public_base_urls
    url = signature.signed_url(request, public[0] if public else None)
    params = request.form  # a MultiDict: repeated keys must all count (413 if too big)
    sent = request.headers.get(signature.HEADER)
    validator = bot.validator
    try:
        signature.verify(validator, url, params, sent)
    except BadSignature as exc:
        hint = signature.diagnose(validator, url, params, sent) if sent else None
        log.warning("webhook rejected %s", kv(
            reason=exc.message, url_checked=url, remote=request.remote_addr, hint=hint))
        raise
    if request.mimetype != FORM:
        raise UnsupportedMedia(f"Content-Type must be {FORM}, got {request.mimetype or 'none'}")
    return Event.from_form(params, request.headers)
