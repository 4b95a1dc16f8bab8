"""The dashboard's pages. Each reads in one short read-only transaction (outside the
writer lock) and renders on the server; forms post back and redirect (no script).

    /admin/                      conversations by latest message, each with its customer,
                                 first words and state; filters, search; queue, switch,
                                 chart
    /admin/conversations/CH...   one conversation as a thread, in time order
    /admin/failures              failures by error code, what can be requeued first
    /admin/replies               every reply, filtered by status, delivery or outcome
    /admin/faq                   questions the FAQ did not answer (or answered wrong),
                                 grouped by meaning: which entries to write next
"""

from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for

from ...autoreply.names import CHANNELS as RULE_CHANNELS
from ...operator import switch
from ...operator.requeue import NoSuchReply, NotRequeueable, requeue
from ...services import services
from ...store.models import utcnow
from ...timeline import conversations, replies, stats, status, waiting
from ...timeline import faq as faq_record
from ...timeline import overview as listing
from .. import params
from ..errors import Refused
from . import chart

PAGE = 25
CHANNELS = tuple(sorted(RULE_CHANNELS))


def install(bp: Blueprint) -> None:
    bp.add_url_rule("/", "overview", overview)
    bp.add_url_rule("/conversations/<sid>", "conversation", conversation)
    bp.add_url_rule("/failures", "failures", failures)
    bp.add_url_rule("/replies", "replies", reply_list)
    bp.add_url_rule("/replies/<int:reply_id>/requeue", "requeue", requeue_reply,
                    methods=["POST"])
    bp.add_url_rule("/autoreply", "autoreply", autoreply, methods=["POST"])
    bp.add_url_rule("/faq", "faq_gaps", faq_gaps)
    bp.add_url_rule("/messages/<sid>/faq/wrong", "faq_wrong", faq_wrong, methods=["POST"])
    bp.app_context_processor(lambda: {
        "dry_run": services().settings.dry_run, "states": status.CONVERSATION_STATES,
        "channels": CHANNELS})


def overview():
    """Conversations with their state (or a search's), the queue, the chart, the switch."""
    bot = services()
    filters = params.overview_filters(request.args)
    now = utcnow()
    with bot.db.read() as conn:
        if filters["q"]:
            found = listing.search(conn, filters["q"], PAGE)
            if found["conversations"] and (found["message_sid"] or filters["q"].startswith("CH")):
                sid = found["conversations"][0]["conversation_sid"]
                return _to_thread(conn, sid, found["anchor"])
            page = {"conversations": found["conversations"], "next": None, "scanned_to": None}
        else:
            page = listing.page(conn, state=filters["state"],
                                          channel=filters["channel"], limit=PAGE,
                                          before=filters["before"])
        queue = replies.queue(conn, bot.settings.sender.lease_seconds)
        hours = stats.hourly(conn, 24, now)
        handed_off = waiting.waiting(conn, PAGE, now)
        autoreply_state = switch.status(conn, bot.policy)
    return render_template(
        "admin/overview.html", page=page, filters=filters, queue=queue,
        chart=chart.svg(hours), chart_compact=chart.svg(hours, compact=True),
        hours=hours, autoreply_on=autoreply_state.on, waiting=handed_off,
        switch_source="runtime switch" if autoreply_state.set else "AUTO_REPLY_ENABLED")


def conversation(sid: str):
    """One conversation as a thread: a page of its newest events, in time order."""
    sid = params.sid(sid)
    before = params.moment("before", request.args.get("before"))
    with services().db.read() as conn:
        page = conversations.timeline(conn, sid, PAGE, before)
        summary = listing.search(conn, sid, 1)["conversations"]
    if not page["events"] and before is None:
        raise Refused(f"404 Not Found: nothing stored for conversation {sid} (never seen, "
                      f"or its events are older than RETENTION and were pruned)", 404)
    return render_template("admin/conversation.html", page=page,
                           events=list(reversed(page["events"])),
                           summary=summary[0] if summary else None)


def failures():
    since_text = request.args.get("since") or "7d"
    since_text = params.choice("since", since_text, ("1h", "24h", "7d", "30d"))
    since, _ = params.period(since_text, None, "7d")
    with services().db.read() as conn:
        groups = replies.failures(conn, since, per_code=PAGE)
    return render_template("admin/failures.html", groups=groups, since=since_text)


def reply_list():
    reply_status = params.choice("status", request.args.get("status"), replies.STATUSES)
    delivery = params.choice("delivery", request.args.get("delivery"), replies.DELIVERIES)
    outcome = params.choice("outcome", request.args.get("outcome"), replies.OUTCOMES)
    before_id = params.optional_id("before_id", request.args.get("before_id"))
    with services().db.read() as conn:
        page = replies.search(conn, status=reply_status, delivery=delivery, outcome=outcome,
                              limit=PAGE, before_id=before_id)
    return render_template("admin/replies.html", page=page, status_filter=reply_status or "",
                           delivery_filter=delivery or "", outcome_filter=outcome or "",
                           statuses=("", *replies.STATUSES),
                           deliveries=("", *replies.DELIVERIES),
                           outcomes=("", *replies.OUTCOMES))


def requeue_reply(reply_id: int):
    reply_id = params.record_id("reply id", reply_id)
    back = params.dashboard_path("back", request.form.get("back"))
    try:
        requeue(services(), reply_id, by="dashboard")
        flash(f"Reply {reply_id} requeued: it goes out again within seconds.", "ok")
    except NoSuchReply:
        abort(404)
    except NotRequeueable as exc:
        flash(str(exc), "error")
    return redirect(request.script_root + back if back else url_for("admin.failures"))


def faq_gaps():
    """What customers asked that the FAQ did not answer, or answered wrong, by meaning."""
    since_text = params.choice("since", request.args.get("since") or "30d",
                               ("24h", "7d", "30d", "90d"))
    since, _ = params.period(since_text, None, "30d")
    with services().db.read() as conn:
        groups = [g.as_dict() for g in faq_record.gaps(conn, since, PAGE)]
    rules = services().policy.rules
    return render_template("admin/faq.html", groups=groups, since=since_text,
                           has_faq=rules is not None and rules.knowledge is not None)


def faq_wrong(sid: str):
    """Mark the FAQ's decision on a customer's message wrong (or undo that); back to the
    message in its thread."""
    sid = params.sid(sid, "message SID")
    wrong = request.form.get("undo") is None
    with services().db.transaction() as conn:
        conversation_sid = faq_record.mark_wrong(conn, sid, wrong, by="dashboard")
    if conversation_sid is None:
        abort(404)
    flash("Marked wrong: it shows on the FAQ gaps page." if wrong else
          "No longer marked wrong.", "ok")
    with services().db.read() as conn:
        return _to_thread(conn, conversation_sid, f"m-{sid}")


def _to_thread(conn, conversation_sid: str, anchor: str | None):
    """To a message or reply in its thread, on the page of the thread that shows it."""
    before = conversations.thread_page(conn, anchor, PAGE)
    return redirect(url_for("admin.conversation", sid=conversation_sid, _anchor=anchor,
                            before=before.isoformat() if before else None))


def autoreply():
    value = params.choice("value", request.form.get("value"), switch.VALUES)
    if value is None:
        raise params.bad("value", "must be on or off")
    switch.turn(services(), value, by="dashboard")
    flash(f"Auto-reply {value}: every instance obeys within {switch.OBEYED_WITHIN:g} s.", "ok")
    return redirect(url_for("admin.overview"))
