"""The dashboard's pages. Each reads in one short read-only transaction (outside the
writer lock) and renders on the server; forms post back and redirect (no script)."""

from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from sqlalchemy import select

from ...pipeline import state
from ...services import services
from ...store.models import Switch, utcnow
from ...timeline import conversations, operator, replies, stats
from ...timeline.operator import NotRequeueable
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
    before = _moment("before")
    now = utcnow()
    with bot.db.read() as conn:
        page = conversations.recent(conn, PAGE, before)
        queue = replies.queue(conn, bot.settings.sender.lease_seconds)
        hours = stats.hourly(conn, 24, now)
        stored = conn.execute(select(Switch.value).where(
            Switch.name == state.AUTOREPLY_SWITCH)).scalar()  # as stored, not as cached
    switch = None if stored is None else stored == "on"
    return render_template(
        "admin/overview.html", page=page, queue=queue, chart=chart.svg(hours),
        hours=hours, autoreply_on=bot.policy.switch(switch),
        switch_source="runtime switch" if switch is not None else "AUTO_REPLY_ENABLED")


def conversation(sid: str):
    before = _moment("before")
    with services().db.read() as conn:
        page = conversations.timeline(conn, sid[:64], PAGE, before)
    return render_template("admin/conversation.html", page=page)


def failures():
    since_text = request.args.get("since", "7d")
    try:
        since, _ = operator.period(since_text, None)
    except ValueError as exc:
        flash(str(exc), "error")
        since, since_text = operator.period("7d", None)[0], "7d"
    with services().db.read() as conn:
        groups = replies.failures(conn, since, per_code=PAGE)
    return render_template("admin/failures.html", groups=groups, since=since_text)


def reply_list():
    status = request.args.get("status", "")
    delivery = request.args.get("delivery", "")
    status = status if status in STATUSES else ""
    delivery = delivery if delivery in DELIVERIES else ""
    before_id = request.args.get("before_id", "")
    with services().db.read() as conn:
        page = replies.search(conn, status=status or None, delivery=delivery or None,
                              limit=PAGE, before_id=int(before_id) if before_id.isdigit()
                              else None)
    return render_template("admin/replies.html", page=page, status_filter=status,
                           delivery_filter=delivery, statuses=STATUSES, deliveries=DELIVERIES)


def requeue(reply_id: int):
    bot = services()
    try:
        operator.requeue(bot.db, reply_id, by="dashboard", wake=bot.processor.on_commit)
        flash(f"Reply {reply_id} requeued: it goes out again within seconds.", "ok")
    except NotRequeueable as exc:
        flash(str(exc), "error")
    return redirect(_back())


def autoreply():
    value = request.form.get("value")
    if value in ("on", "off"):
        with services().db.transaction() as conn:
            state.set_switch(conn, state.AUTOREPLY_SWITCH, value)
        flash(f"Auto-reply {value}: every instance obeys within "
              f"{state.SWITCH_CACHE_SECONDS:g} s.", "ok")
    return redirect(url_for("admin.overview"))


def _moment(name: str):
    raw = request.args.get(name)
    try:
        return operator.moment(raw, utcnow()) if raw else None
    except ValueError:
        return None


def _back() -> str:
    target = request.form.get("back", "")
    return target if target.startswith("/admin") and "//" not in target \
        else url_for("admin.failures")
