"""The dashboard's pages. Each reads in one short read-only transaction (outside the
writer lock) and renders on the server; forms post back and redirect (no script)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for

from ...operator import switch
from ...operator.requeue import NotRequeueable, requeue
from ...services import services
from ...store.models import utcnow
from ...timeline import conversations, replies, stats
from .. import params
from . import chart

PAGE = 25


def install(bp: Blueprint) -> None:
    bp.add_url_rule("/", "overview", overview)
    bp.add_url_rule("/conversations/<sid>", "conversation", conversation)
    bp.add_url_rule("/failures", "failures", failures)
    bp.add_url_rule("/replies", "replies", reply_list)
    bp.add_url_rule("/replies/<int:reply_id>/requeue", "requeue", requeue_reply,
                    methods=["POST"])
    bp.add_url_rule("/autoreply", "autoreply", autoreply, methods=["POST"])


def overview():
    """Recent conversations with the bot's decision, the queue, the chart, the switch."""
    bot = services()
    before = params.moment("before", request.args.get("before"))
    now = utcnow()
    with bot.db.read() as conn:
        page = conversations.recent(conn, PAGE, before)
        queue = replies.queue(conn, bot.settings.sender.lease_seconds)
        hours = stats.hourly(conn, 24, now)
        autoreply_state = switch.status(conn, bot.policy)
    return render_template(
        "admin/overview.html", page=page, queue=queue, chart=chart.svg(hours),
        hours=hours, autoreply_on=autoreply_state.on,
        switch_source="runtime switch" if autoreply_state.set else "AUTO_REPLY_ENABLED")


def conversation(sid: str):
    sid = params.sid(sid)
    before = params.moment("before", request.args.get("before"))
    with services().db.read() as conn:
        page = conversations.timeline(conn, sid, PAGE, before)
    return render_template("admin/conversation.html", page=page)


def failures():
    since_text = request.args.get("since") or "7d"
    since, _ = params.period(since_text, None, "7d")
    with services().db.read() as conn:
        groups = replies.failures(conn, since, per_code=PAGE)
    return render_template("admin/failures.html", groups=groups, since=since_text)


def reply_list():
    status = params.choice("status", request.args.get("status"), replies.STATUSES)
    delivery = params.choice("delivery", request.args.get("delivery"), replies.DELIVERIES)
    before_id = params.optional_id("before_id", request.args.get("before_id"))
    with services().db.read() as conn:
        page = replies.search(conn, status=status, delivery=delivery, limit=PAGE,
                              before_id=before_id)
    return render_template("admin/replies.html", page=page, status_filter=status or "",
                           delivery_filter=delivery or "", statuses=("", *replies.STATUSES),
                           deliveries=("", *replies.DELIVERIES))


def requeue_reply(reply_id: int):
    reply_id = params.record_id("reply id", reply_id)
    back = params.dashboard_path("back", request.form.get("back"))
    try:
        requeue(services(), reply_id, by="dashboard")
        flash(f"Reply {reply_id} requeued: it goes out again within seconds.", "ok")
    except NotRequeueable as exc:
        flash(str(exc), "error")
    return redirect(request.script_root + back if back else url_for("admin.failures"))


def autoreply():
    value = params.choice("value", request.form.get("value"), switch.VALUES)
    if value is None:
        raise params.bad("value", "must be on or off")
    switch.turn(services(), value, by="dashboard")
    flash(f"Auto-reply {value}: every instance obeys within {switch.OBEYED_WITHIN:g} s.", "ok")
    return redirect(url_for("admin.overview"))
