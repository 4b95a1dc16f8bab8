"""The operator's JSON API under /api/, behind ADMIN_TOKEN as a bearer token.

    GET  /api/conversations                      newest conversations, the bot's decision
    GET  /api/conversations/<CH...>/timeline     messages, decisions, replies, receipts
    GET  /api/replies?status=&delivery=&since=&until=   replies, filtered, paginated
    GET  /api/failures?since=7d                  failed and undelivered, by error code
    GET  /api/stats?since=24h&until=             counts, failures, latency, decisions
    GET  /api/queue                              depth, oldest pending, sending pace
    POST /api/replies/<id>/requeue               send a failed reply again
    GET  /api/messages/<IM...>/faq               the FAQ's match: outcome, entry, candidates
    POST /api/messages/<IM...>/faq/wrong         mark that decision wrong (`faq gaps`)
    GET  /api/faq/gaps?since=30d                 unanswered questions, grouped by meaning
    GET  /api/waiting                            conversations waiting for an agent, oldest first

Not registered at all without ADMIN_TOKEN (404). Reads run in short read-only
transactions outside the writer lock, so the API never slows webhooks. The token is
checked by bearer.py (throttled, constant time, never logged); parameters by params.py.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, request

from ..services import services
from ..store.models import utcnow
from ..timeline import conversations, operator, replies, stats, waiting
from ..timeline import faq as faq_record
from ..timeline.operator import NotRequeueable
from . import bearer, params
from .errors import Refused

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_LIMIT = 200
REPLY_STATUSES = ("queued", "sending", "sent", "failed")
DELIVERY_STATUSES = ("sent", "delivered", "read", "failed", "undelivered", "problem")


@bp.before_request
def _authenticate():
    bearer.require(services().settings.web.admin_token, "api")


@bp.get("/conversations")
def recent_conversations():
    before = params.moment("before", request.args.get("before"))
    with services().db.read() as conn:
        page = conversations.recent(conn, _limit(25), before)
    return jsonable(page)


@bp.get("/waiting")
def waiting_for_an_agent():
    with services().db.read() as conn:
        page = waiting.waiting(conn, _limit(25), utcnow())
    return jsonable(page)


@bp.get("/conversations/<sid>/timeline")
def conversation_timeline(sid: str):
    sid = params.sid(sid)
    before = params.moment("before", request.args.get("before"))
    with services().db.read() as conn:
        page = conversations.timeline(conn, sid, _limit(50), before)
    if not page["events"] and before is None:
        raise Refused(f"404 Not Found: no events stored for conversation {sid}", 404)
    return jsonable(page)


@bp.get("/replies")
def search_replies():
    status = params.choice("status", request.args.get("status"), REPLY_STATUSES)
    delivery = params.choice("delivery", request.args.get("delivery"), DELIVERY_STATUSES)
    since, until = _period(default=None)
    before_id = params.optional_id("before_id", request.args.get("before_id"))
    with services().db.read() as conn:
        page = replies.search(conn, status=status, delivery=delivery, since=since,
                              until=until, limit=_limit(50), before_id=before_id)
    return jsonable(page)


@bp.get("/failures")
def failures():
    since, _until = _period(default="7d")
    with services().db.read() as conn:
        groups = replies.failures(conn, since, per_code=_limit(20))
    return jsonable({"since": since, "groups": groups})


@bp.get("/stats")
def statistics():
    since, until = _period(default="24h")
    with services().db.read() as conn:
        return jsonable(stats.period(conn, since, until))


@bp.get("/queue")
def queue():
    bot = services()
    with bot.db.read() as conn:
        return jsonable(replies.queue(conn, bot.settings.sender.lease_seconds))


@bp.post("/replies/<int:reply_id>/requeue")
def requeue(reply_id: int):
    reply_id = params.record_id("reply id", reply_id)
    bot = services()
    try:
        operator.requeue(bot.db, reply_id, by="api", wake=bot.processor.on_commit)
    except NotRequeueable as exc:
        raise Refused(f"409 Conflict: {exc}", 409) from None
    return {"requeued": reply_id}


@bp.get("/messages/<sid>/faq")
def faq_match(sid: str):
    sid = params.sid(sid, "message SID")
    with services().db.read() as conn:
        match = faq_record.match_of(conn, sid)
    if match is None:
        raise Refused(f"404 Not Found: no FAQ decision stored for message {sid}", 404)
    return {"message_sid": sid, **match}


@bp.post("/messages/<sid>/faq/wrong")
def faq_wrong(sid: str):
    sid = params.sid(sid, "message SID")
    with services().db.transaction() as conn:
        done = faq_record.mark_wrong(conn, sid)
    if not done:
        raise Refused(f"404 Not Found: no FAQ decision stored for message {sid}", 404)
    return {"marked_wrong": sid}


@bp.get("/faq/gaps")
def faq_gaps():
    since, _ = params.period(request.args.get("since"), None, "30d")
    with services().db.read() as conn:
        groups = faq_record.gaps(conn, since, _limit(20))
    return {"gaps": [group.as_dict() for group in groups]}


def _period(default: str | None):
    since, until = request.args.get("since"), request.args.get("until")
    if default is None and not since and not until:
        return None, None
    return params.period(since, until, default or "366d")


def _limit(default: int) -> int:
    return params.limit(request.args.get("limit"), default, MAX_LIMIT)


def jsonable(value):
    """Times as ISO 8601 UTC ('...Z'), recursively; the rest as JSON has it."""
    if isinstance(value, datetime):
        return value.isoformat() + ("Z" if value.tzinfo is None else "")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    return value
