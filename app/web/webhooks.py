"""Webhook endpoints: check the origin, the body and the signature, then hand a plain
Event on.

Twilio answers need no body: 200 with an empty body publishes a pre-event unchanged and
acknowledges a post-event. `X-Webhook-Outcome` tells a human with curl what happened.

Each request has an id: a well-formed `X-Request-Id` from the proxy in front (nginx,
Heroku's router), else Twilio's `I-Twilio-Idempotency-Token`, else a new one. It is in
every log line about the request (with the conversation and message SIDs once the
event is verified), in the response's `X-Request-Id`, and stored with the reply, so
the sender's lines about that reply carry it too. Each answer is counted, in one place:
tally.py.
"""

from __future__ import annotations

import logging
import re
import time
import uuid

from flask import Blueprint, Flask, current_app, g, request
from werkzeug.datastructures import MultiDict

from ..errors import BadSignature, UnsupportedMedia
from ..logs import kv, pop_context, push_context, without_query
from ..pipeline.events import IDEMPOTENCY_HEADER, PRE_EVENTS, Event
from ..services import services
from . import form, signature
from .tally import Tally

log = logging.getLogger(__name__)
bp = Blueprint("webhooks", __name__, url_prefix="/webhooks/conversations")
FORM = "application/x-www-form-urlencoded"
_HINTS = "webhook_hints"
REQUEST_ID_HEADER = "X-Request-Id"
# Short and harmless in a log line or a header: UUIDs, hex, base64, Heroku's and nginx's.
_REQUEST_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:+/=@-]{0,63}")


def request_id(headers) -> str:
    """The request's id: the proxy's X-Request-Id or Twilio's idempotency token when
    well-formed (at most 64 safe characters), else a new random one."""
    for name in (REQUEST_ID_HEADER, IDEMPOTENCY_HEADER):
        given = (headers.get(name) or "").strip()
        if _REQUEST_ID.fullmatch(given):
            return given
    return uuid.uuid4().hex


@bp.before_request
def _start() -> None:
    g.started = time.perf_counter()
    g.request_id = request_id(request.headers)
    g.log_tokens = [push_context(request_id=g.request_id)]


@bp.after_request
def _tag(response):
    response.headers[REQUEST_ID_HEADER] = g.request_id
    return response


@bp.teardown_request
def _end(_exc) -> None:
    for token in reversed(g.pop("log_tokens", ())):
        pop_context(token)


def init_app(app: Flask) -> None:
    app.extensions[_HINTS] = signature.Hints()
    app.register_blueprint(bp)


def hints(app: Flask) -> signature.Hints:
    """The app's budget for explaining rejected signatures (one per process)."""
    return app.extensions[_HINTS]


@bp.post("", strict_slashes=False)
def post_event():
    with Tally() as tally:
        event = tally.event = verified_event()
        outcome = tally.outcome = services().processor.process(event)
    return "", 200, {"X-Webhook-Outcome": outcome.header()}


@bp.post("/pre", strict_slashes=False)
def pre_event():
    with Tally() as tally:
        event = tally.event = verified_event()
    known = event.type in PRE_EVENTS
    outcome = "published unchanged" if known else "unknown pre-event, published unchanged"
    log.log(logging.DEBUG if known else logging.INFO, "pre-event %s", kv(
        event=event.type, conversation=event.get("ConversationSid"),
        outcome="; ".join((outcome, *event.notes))))
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
            reason=exc.message, url_checked=" ".join(map(without_query, urls)),
            remote=request.remote_addr,
            hint=hint))
        raise
    if not is_form:
        raise UnsupportedMedia(f"Content-Type must be {FORM}, got {request.mimetype or 'none'}")
    event = Event.from_form(params, request.headers, request_id=g.request_id)
    g.log_tokens.append(push_context(conversation_sid=event.get("ConversationSid"),
                                     message_sid=event.get("MessageSid")))
    return event
