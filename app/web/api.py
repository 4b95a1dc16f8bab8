"""The operator's JSON API under /api/, behind ADMIN_TOKEN as a bearer token.

    GET  /api/conversations?state=&channel=&q=   conversations by latest message: customer,
                                                 first words, state; a search (q)
    GET  /api/conversations/<CH...>/timeline     messages, decisions, replies, receipts
    GET  /api/replies?status=&delivery=&outcome=&since=&until=   replies, paginated
    GET  /api/failures?since=7d                  failed and undelivered, by error code
    GET  /api/stats?since=24h&until=             counts, failures, latency, decisions
    GET  /api/queue                              depth, oldest pending, sending pace
    POST /api/replies/<id>/requeue               send a failed reply again
    GET  /api/messages/<IM...>/faq               the FAQ's match: outcome, entry, candidates
    POST /api/messages/<IM...>/faq/wrong         mark that decision wrong (`faq gaps`)
    DELETE /api/messages/<IM...>/faq/wrong       ... no longer
    GET  /api/faq/gaps?since=30d                 unanswered questions, grouped by meaning
    GET  /api/waiting                            conversations waiting for an agent, oldest first

Not registered at all without ADMIN_TOKEN (404). Reads run in short read-only
transactions outside the writer lock, so the API never slows webhooks. The token is
checked by bearer.py (throttled, constant time, never logged); parameters by params.py;
what an operator does (requeue) by app/operator/, as the CLI and the dashboard do it.
"""

from __future__ import annotations

from datetime import date, datetime

from flask import Blueprint, Flask, request

from ..operator.requeue import NoSuchReply, NotRequeueable, requeue
from ..services import services
from ..store.models import utcnow
from ..timeline import conversations, overview, replies, stats, waiting
from ..timeline import faq as faq_record
from . import bearer, params
from .errors import Refused

bp = Blueprint("api", __name__, url_prefix="/api")
MAX_LIMIT = 200


def init_app(app: Flask) -> None:
    """Serve the API only when ADMIN_TOKEN is set (404 otherwise)."""
    if services(app).settings.web.admin_token:
        app.register_blueprint(bp)


@bp.before_request
def _authenticate():
    bearer.require("api")


@bp.get("/conversations")
def recent_conversations():
    query = params.overview_filters(request.args)
    with services().db.read() as conn:
        if query["q"]:
            return jsonable(overview.search(conn, query["q"], _limit(25)))
        page = overview.page(conn, state=query["state"], channel=query["channel"],
                                      limit=_limit(25), before=query["before"])
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
    reply_status = params.choice("status", request.args.get("status"), replies.STATUSES)
    delivery = params.choice("delivery", request.args.get("delivery"), replies.DELIVERIES)
    outcome = params.choice("outcome", request.args.get("outcome"), replies.OUTCOMES)
    since, until = _period(default=None)
    before_id = params.optional_id("before_id", request.args.get("before_id"))
    with services().db.read() as conn:
        page = replies.search(conn, status=reply_status, delivery=delivery, outcome=outcome,
                              since=since, until=until, limit=_limit(50), before_id=before_id)
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
def requeue_reply(reply_id: int):
    reply_id = params.record_id("reply id", reply_id)
    try:
        requeue(services(), reply_id, by="api")
    except NoSuchReply as exc:
        raise Refused(f"404 Not Found: {exc}", 404) from None
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


@bp.route("/messages/<sid>/faq/wrong", methods=["POST", "DELETE"])
def faq_wrong(sid: str):
    sid = params.sid(sid, "message SID")
    wrong = request.method == "POST"
    with services().db.transaction() as conn:
        done = faq_record.mark_wrong(conn, sid, wrong, by="api")
    if done is None:
        raise Refused(f"404 Not Found: no FAQ decision stored for message {sid}", 404)
    return {"marked_wrong": sid} if wrong else {"no_longer_marked_wrong": sid}


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
