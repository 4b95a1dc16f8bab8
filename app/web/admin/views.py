"""The dashboard's pages. Each reads in one short read-only transaction (outside the
writer lock) and renders on the server; forms post back and redirect (no script)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ...pipeline import state
from ...services import services
from ...store.models import Switch, utcnow
from ...timeline import conversations, operator, replies, stats, waiting
from ...timeline.operator import NotRequeueable
from .. import params
from . import chart

PAGE = 25
STATUSES = ("", "queued", "sending", "sent", "failed")
DELIVERIES = ("", "delivered", "read", "failed", "undelivered", "problem")


def install(bp: Blueprint) -> None:
    bp.add_url_rule("/", "overview", overview)
    bp.add_url_rule("/conversations/<sid>", "conversation", conversation)
    bp.add_url_rule("/failures", "failures", failures)
    bp.add_url_rule("/replies", "replies", reply_list)
    bp.add_url_rule("/replies/<int:reply_id>/requeue", "requeue", requeue, methods=["POST"])
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
        handed_off = waiting.waiting(conn, PAGE, now)
        stored = conn.execute(select(Switch.value).where(
            Switch.name == state.AUTOREPLY_SWITCH)).scalar()  # as stored, not as cached
    switch = None if stored is None else stored == "on"
    return render_template(
        "admin/overview.html", page=page, queue=queue, chart=chart.svg(hours),
        hours=hours, autoreply_on=bot.policy.switch(switch), waiting=handed_off,
        switch_source="runtime switch" if switch is not None else "AUTO_REPLY_ENABLED")


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
    status = params.choice("status", request.args.get("status"), STATUSES[1:])
    delivery = params.choice("delivery", request.args.get("delivery"), DELIVERIES[1:])
    before_id = params.optional_id("before_id", request.args.get("before_id"))
    with services().db.read() as conn:
        page = replies.search(conn, status=status, delivery=delivery, limit=PAGE,
                              before_id=before_id)
    return render_template("admin/replies.html", page=page, status_filter=status or "",
                           delivery_filter=delivery or "", statuses=STATUSES,
                           deliveries=DELIVERIES)


def requeue(reply_id: int):
    reply_id = params.record_id("reply id", reply_id)
    back = params.dashboard_path("back", request.form.get("back"))
    bot = services()
    try:
        operator.requeue(bot.db, reply_id, by="dashboard", wake=bot.processor.on_commit)
        flash(f"Reply {reply_id} requeued: it goes out again within seconds.", "ok")
    except NotRequeueable as exc:
        flash(str(exc), "error")
    return redirect(request.script_root + back if back else url_for("admin.failures"))


def autoreply():
    value = params.choice("value", request.form.get("value"), ("on", "off"))
    if value is None:
        raise params.bad("value", "must be on or off")
    with services().db.transaction() as conn:
        state.set_switch(conn, state.AUTOREPLY_SWITCH, value)
    flash(f"Auto-reply {value}: every instance obeys within "
          f"{state.SWITCH_CACHE_SECONDS:g} s.", "ok")
    return redirect(url_for("admin.overview"))
