"""Conversations as an operator reads them: the overview (each conversation's customer,
last message and one state), a search, and one conversation's thread: each message
with who wrote it and what it said, the bot's decision, its reply and every
participant's delivery receipt (current status and full history).

Every read is bounded whatever the tables hold (1,000,000 events in bench/): the
overview walks the newest messages by `received_at` in batches of SCAN, at most
MAX_SCAN rows per page (a filter that matches rarely returns a shorter page and the
cursor to go on from); a search and a thread are index ranges.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

from sqlalchemy import Connection, and_, exists, func, select

from ..pipeline.outcome import Kind
from ..store.models import (
    Conversation,
    DeliveryReceipt,
    OptOut,
    ProcessedEvent,
    ReceiptEvent,
    Reply,
)
from ..twilio.error_codes import describe, fix
from . import status
from .faq import matches_of

EVENTS = ProcessedEvent.__table__
REPLIES = Reply.__table__
RECEIPTS = DeliveryReceipt.__table__
HISTORY = ReceiptEvent.__table__
CONVERSATIONS = Conversation.__table__
OPT_OUTS = OptOut.__table__
MESSAGE = "onMessageAdded"
RECEIPT = "onDeliveryUpdated"
SCAN = 500  # newest messages read per batch of the overview
MAX_SCAN = 2000  # at most this many per page: a rare filter gives a shorter page
PREVIEW = 80  # characters of the last message shown in the overview
# A customer's or an agent's message (not our own reply coming back, not the REST API's).
SPOKEN = and_(EVENTS.c.reason.is_not(None), EVENTS.c.reason.not_in(("OWN_MESSAGE",
                                                                    "SYSTEM_MESSAGE")))
_EVENT_COLUMNS = (EVENTS.c.id, EVENTS.c.event_type, EVENTS.c.conversation_sid,
                  EVENTS.c.message_sid, EVENTS.c.outcome, EVENTS.c.outcome_kind,
                  EVENTS.c.reason, EVENTS.c.rule, EVENTS.c.received_at, EVENTS.c.author,
                  EVENTS.c.channel, EVENTS.c.body, EVENTS.c.media_types)
# What the overview's scan reads of each message; the rest only for the rows shown.
_SCAN_COLUMNS = (EVENTS.c.id, EVENTS.c.conversation_sid, EVENTS.c.message_sid,
                 EVENTS.c.reason, EVENTS.c.received_at, EVENTS.c.channel, EVENTS.c.outcome,
                 EVENTS.c.author)
_SID = re.compile(r"(CH|IM)[0-9a-fA-F]{32}")
# A conversation waiting for an agent, unless its customer (who asked: by address or
# participant) has opted out since, here or in another conversation (a 21610 updates only
# the conversation of the refusal): two primary-key probes of opt_outs each.
WAITING = and_(CONVERSATIONS.c.waiting_since.is_not(None), ~exists().where(
    OPT_OUTS.c.address.in_([CONVERSATIONS.c.waiting_address,
                            CONVERSATIONS.c.waiting_participant])))


def overview(conn: Connection, *, state: str | None = None, channel: str | None = None,
             limit: int = 25, before: datetime | None = None) -> dict:
    """Conversations by their latest message (a customer's or an agent's), newest first,
    each with its customer, the message's first words and its state; filtered by state
    and channel. `next` is the cursor of the following page (None on the last);
    `scanned_to` how far back a page looked when it stopped at MAX_SCAN.

    The filters are applied to each conversation's latest message as the rows are read
    (a SQL filter would read the whole table to find a channel nobody uses), so a page
    costs at most MAX_SCAN rows and a light state per conversation read. Conversations
    waiting for an agent are read from their own index instead: that filter is exact
    (the same as /api/waiting), however far back their messages are."""
    if state == "waiting_agent":
        return _waiting_overview(conn, channel, limit, before)
    taken: dict[str, object] = {}
    messages: dict[str, int] = {}
    passed: set[str] = set()  # latest message seen, not matching the filters
    cursor, scanned, last = before, 0, None
    while len(taken) < limit and scanned < MAX_SCAN:
        query = (select(*_SCAN_COLUMNS).where(EVENTS.c.event_type == MESSAGE, SPOKEN)
                 .order_by(EVENTS.c.received_at.desc()).limit(SCAN))
        if cursor is not None:
            query = query.where(EVENTS.c.received_at < cursor)
        rows = conn.execute(query).all()
        fresh = [r for r in rows if r.conversation_sid not in taken
                 and r.conversation_sid not in passed]
        newer = _active_since(conn, {r.conversation_sid for r in fresh}, before)
        latest = [r for r in _latest_rows(fresh, newer) if not channel or r.channel == channel]
        states = _states(conn, latest) if state else {}
        rows_used = 0
        for row in rows:
            rows_used += 1
            last = row.received_at
            sid = row.conversation_sid
            if sid in taken:
                messages[sid] += 1
                continue
            if sid in passed:
                continue
            if (sid in newer or (channel and row.channel != channel)
                    or (state and states.get(row.id) != state)):
                passed.add(sid)
                continue
            taken[sid], messages[sid] = row, 1
            if len(taken) == limit:
                break
        scanned += rows_used
        if len(rows) < SCAN and rows_used == len(rows):
            last = None  # the oldest message: no next page
            break
        cursor = last
    ids = [row.id for row in taken.values()]
    full = {row.id: row for row in conn.execute(
        select(*_EVENT_COLUMNS).where(EVENTS.c.id.in_(ids)))} if ids else {}
    summaries = _summaries(conn, [full[i] for i in ids])
    for summary in summaries:
        summary["messages"] = messages[summary["conversation_sid"]]
    return {"conversations": summaries, "next": last,
            "scanned_to": None if last is None or len(taken) == limit else last}


def _waiting_overview(conn: Connection, channel: str | None, limit: int,
                      before: datetime | None) -> dict:
    """Conversations waiting for an agent, the latest handed off first (the cursor: when
    it began to wait); a channel filter may make a page shorter."""
    c = CONVERSATIONS.c
    query = (select(c.sid, c.waiting_since).where(WAITING)
             .order_by(c.waiting_since.desc(), c.sid).limit(limit))
    if before is not None:
        query = query.where(c.waiting_since < before)
    found = conn.execute(query).all()
    latest = [row for row in (latest_message(conn, sid) for sid, _ in found)
              if row is not None and (not channel or row.channel == channel)]
    summaries = _summaries(conn, latest)
    return {"conversations": summaries, "scanned_to": None,
            "next": found[-1].waiting_since if len(found) == limit else None}


_LIGHT = (REPLIES.c.in_reply_to, REPLIES.c.status, REPLIES.c.delivery_status,
          REPLIES.c.dry_run, REPLIES.c.error_code, REPLIES.c.delivery_error_code)


def _states(conn: Connection, rows) -> dict[int, str]:
    """Each latest message's conversation state, from the few columns it needs (only a
    message the bot decided to answer has a reply to look up)."""
    sids = [r.message_sid for r in rows if r.message_sid and r.reason == "REPLY"]
    replies = {r.in_reply_to: r for r in conn.execute(
        select(*_LIGHT).where(REPLIES.c.in_reply_to.in_(sids)))} if sids else {}
    waits, opted = standing(conn, rows)
    found = {}
    for row in rows:
        reply = replies.get(row.message_sid)
        outcome = code = None
        if reply is not None:
            outcome = status.reply_outcome(reply.status, reply.delivery_status, reply.dry_run)
            code = reply.error_code or reply.delivery_error_code
        found[row.id] = status.conversation_state(
            row.reason, outcome, code, row.conversation_sid in waits, row.outcome,
            opted_out=row.conversation_sid in opted)
    return found


def standing(conn: Connection, rows) -> tuple[set[str], set[str]]:
    """Of these latest messages' conversations, those waiting for an agent (handed off,
    no agent since), and those whose message's author has opted out (Twilio refused them
    21610, here or in another conversation; no START since)."""
    if not rows:
        return set(), set()
    sids = sorted({r.conversation_sid for r in rows})
    waits = set(conn.execute(select(CONVERSATIONS.c.sid).where(
        CONVERSATIONS.c.sid.in_(sids), WAITING)).scalars())
    authors = sorted({r.author for r in rows if r.author})
    out = set(conn.execute(select(OPT_OUTS.c.address).where(
        OPT_OUTS.c.address.in_(authors))).scalars()) if authors else set()
    opted = {r.conversation_sid for r in rows if r.author in out}
    return waits, opted


def _active_since(conn: Connection, sids: set[str], since: datetime | None) -> set[str]:
    """Of these conversations, those with a message at or after `since` (shown on an
    earlier page already); none when there is no earlier page."""
    if since is None or not sids:
        return set()
    return set(conn.execute(select(EVENTS.c.conversation_sid).distinct().where(
        EVENTS.c.conversation_sid.in_(sorted(sids)), EVENTS.c.received_at >= since,
        EVENTS.c.event_type == MESSAGE, SPOKEN)).scalars())


def _latest_rows(rows, excluded: set[str]) -> list:
    """Each conversation's first (newest) row, unless excluded."""
    seen, latest = set(excluded), []
    for row in rows:
        if row.conversation_sid not in seen:
            seen.add(row.conversation_sid)
            latest.append(row)
    return latest


def _summaries(conn: Connection, rows) -> list[dict]:
    """Each latest message as the overview shows it (its customer, first words, state
    and reply), in the order given."""
    replies = {r["in_reply_to"]: r for r in replies_for(
        conn, [r.message_sid for r in rows if r.message_sid], receipts=False)}
    waits, opted = standing(conn, rows)
    result = []
    for row in rows:
        reply = replies.get(row.message_sid)
        message = _message(row)
        outcome = reply["outcome"] if reply else None
        code = reply and ((reply["error"] or {}).get("code")
                          or (reply["delivery"]["error"] or {}).get("code"))
        state = status.conversation_state(row.reason, outcome, code,
                                          row.conversation_sid in waits, row.outcome,
                                          opted_out=row.conversation_sid in opted)
        result.append({
            **message, "customer": {"address": row.author, "channel": row.channel},
            "preview": preview(message), "reply": reply, "state": state,
            "state_label": status.CONVERSATION_STATES[state], "tone": status.TONE[state],
            "messages": 1})
    _add_customers(conn, result)
    return result


def _add_customers(conn: Connection, summaries: list[dict]) -> None:
    """The customer of a conversation whose latest message is an agent's: the author of
    its latest customer message (one index probe each)."""
    for summary in summaries:
        if summary["from"] != "agent":
            continue
        customer = latest_message(conn, summary["conversation_sid"], customer=True)
        summary["customer"] = ({"address": customer.author, "channel": customer.channel}
                               if customer is not None else {"address": None,
                                                             "channel": None})


def latest_message(conn: Connection, conversation_sid: str, *, customer: bool = False):
    """The conversation's latest message from a customer or an agent (`customer`: from a
    customer), as the overview reads it (_EVENT_COLUMNS); None if there is none. One
    index probe."""
    query = select(*_EVENT_COLUMNS).where(
        EVENTS.c.conversation_sid == conversation_sid, EVENTS.c.event_type == MESSAGE, SPOKEN)
    if customer:
        query = query.where(EVENTS.c.reason != "AGENT_MESSAGE")
    return conn.execute(query.order_by(EVENTS.c.received_at.desc()).limit(1)).first()


def search(conn: Connection, text: str, limit: int = 25) -> dict:
    """Find conversations by a customer's address (+15558675310, 15558675310,
    whatsapp:+...), a conversation SID or a message SID (the customer's, or a reply's
    Twilio MessageSid): newest first, as the overview shows them. `message_sid` names
    the message found and `anchor` its place in the thread (m-IM... a message, r-<id> a
    reply)."""
    text = text.strip()
    found = {"query": text, "conversations": [], "message_sid": None, "anchor": None}
    match = _SID.fullmatch(text)
    if match and match.group(1) == "CH":
        sids = [text] if conn.execute(select(EVENTS.c.id).where(
            EVENTS.c.conversation_sid == text).limit(1)).first() else []
    elif match:
        found["message_sid"] = text
        sids, found["anchor"] = _message_found(conn, text)
    else:
        sids = list(conn.execute(
            select(EVENTS.c.conversation_sid, func.max(EVENTS.c.received_at).label("at"))
            .where(EVENTS.c.author.in_(addresses(text)))
            .group_by(EVENTS.c.conversation_sid).order_by(func.max(EVENTS.c.received_at).desc())
            .limit(limit)).scalars())
    latest = [row for row in (latest_message(conn, sid) for sid in sids) if row is not None]
    found["conversations"] = _summaries(conn, latest)
    return found


def _message_found(conn: Connection, message_sid: str) -> tuple[list[str], str | None]:
    """The conversation of a message SID (the Twilio MessageSid of a reply, or a
    customer's or agent's message) and its anchor in the thread. A reply first: Twilio
    echoes our replies back as messages, whose rows the thread does not show."""
    reply = conn.execute(select(REPLIES.c.conversation_sid, REPLIES.c.id).where(
        REPLIES.c.twilio_message_sid == message_sid).limit(1)).first()
    if reply is not None:
        return [reply.conversation_sid], f"r-{reply.id}"
    sid = conn.execute(select(EVENTS.c.conversation_sid).where(
        EVENTS.c.key == f"message:{message_sid}")).scalar()
    if sid:
        return [sid], f"m-{message_sid}"
    return [], None


def thread_page(conn: Connection, anchor: str | None, limit: int) -> datetime | None:
    """The `before` cursor of the thread page that shows this anchor (m-IM... a message,
    r-<id> a reply, shown under its message); None: the newest page shows it."""
    if not anchor:
        return None
    kind, _, value = anchor.partition("-")
    if kind == "r":
        value = conn.execute(select(REPLIES.c.in_reply_to).where(
            REPLIES.c.id == int(value))).scalar()
    row = conn.execute(select(EVENTS.c.conversation_sid, EVENTS.c.received_at).where(
        EVENTS.c.key == f"message:{value}")).first() if value else None
    if row is None:
        return None
    newer = conn.execute(select(func.count()).select_from(
        select(EVENTS.c.id).where(EVENTS.c.conversation_sid == row.conversation_sid,
                                  EVENTS.c.event_type != RECEIPT,
                                  EVENTS.c.received_at > row.received_at)
        .limit(limit).subquery())).scalar()
    return row.received_at + timedelta(microseconds=1) if newer >= limit else None


def addresses(text: str) -> list[str]:
    """What an operator may type for a customer's address, as Twilio writes authors:
    '+1 555 867-5310' and '15558675310' are +15558675310 (SMS) or whatsapp:+15558675310."""
    text = text.strip()
    found = [text]
    digits = re.sub(r"[\s().-]", "", text.removeprefix("whatsapp:"))
    if re.fullmatch(r"\+?[0-9]{6,15}", digits):
        number = "+" + digits.lstrip("+")
        found += [number, "whatsapp:" + number]
    return list(dict.fromkeys(found))


def timeline(conn: Connection, conversation_sid: str, limit: int = 50,
             before: datetime | None = None) -> dict:
    """One conversation, newest first: each event with who wrote it and what, the
    decision (with the FAQ's match, when it was asked), its reply and the reply's
    receipts per participant, each receipt with its history. (The dashboard shows a page
    of it in time order.)"""
    query = (select(*_EVENT_COLUMNS)
             .where(EVENTS.c.conversation_sid == conversation_sid,
                    EVENTS.c.event_type != RECEIPT)  # receipts show under their reply
             .order_by(EVENTS.c.received_at.desc()).limit(limit + 1))
    if before is not None:
        query = query.where(EVENTS.c.received_at < before)
    rows = conn.execute(query).all()
    more = len(rows) > limit
    rows = rows[:limit]
    sids = [r.message_sid for r in rows if r.message_sid]
    replies = {r["in_reply_to"]: r for r in replies_for(conn, sids)}
    faq = matches_of(conn, sids)
    items = []
    for row in rows:
        item = {**_message(row), "event_type": row.event_type}
        item["reply"] = replies.get(row.message_sid)
        item["faq"] = faq.get(row.message_sid)
        items.append(item)
    return {"conversation_sid": conversation_sid, "events": items,
            "next": rows[-1].received_at if more else None}


def message(conn: Connection, message_sid: str) -> dict | None:
    """One message's decision and its reply (with receipts), as `why` prints it; None
    when neither is stored."""
    row = conn.execute(select(*_EVENT_COLUMNS).where(
        EVENTS.c.key == f"message:{message_sid}")).first()
    [reply] = replies_for(conn, [message_sid]) or [None]
    if row is None and reply is None:
        return None
    return {"message": _message(row) if row is not None else None, "reply": reply}


def replies_for(conn: Connection, in_reply_to: list[str], *,
                receipts: bool = True) -> list[dict]:
    """The replies to these messages, each with its receipts (per participant)."""
    if not in_reply_to:
        return []
    rows = conn.execute(select(REPLIES).where(REPLIES.c.in_reply_to.in_(in_reply_to))).all()
    replies = [reply_record(r) for r in rows]
    if receipts:
        attach_receipts(conn, replies)
    return replies


def reply_record(row) -> dict:
    """A reply as shown: its text (or template), its outcome (one meaning everywhere:
    status.py), attempts, Twilio's MessageSid, the last error with its meaning and usual
    fix, and the delivery summed up over its receipts."""
    outcome = status.reply_outcome(row.status, row.delivery_status, row.dry_run)
    return {
        "id": row.id, "conversation_sid": row.conversation_sid,
        "in_reply_to": row.in_reply_to, "status": row.status, "attempts": row.attempts,
        "outcome": outcome, "outcome_label": status.OUTCOME_LABELS[outcome],
        "dry_run": bool(row.dry_run),
        "message_sid": row.twilio_message_sid, "body": row.body,
        "content_sid": row.content_sid, "content_variables": row.content_variables,
        "media": row.media, "customer": row.customer, "channel": row.channel,
        "created_at": row.created_at, "sent_at": row.sent_at,
        "error": _error(row.error_code, row.error_message),
        "delivery": {"status": row.delivery_status,
                     "error": _error(row.delivery_error_code)},
        "requeueable": status.requeueable(row.status, row.error_code),
        "receipts": [],
    }


def attach_receipts(conn: Connection, replies: list[dict]) -> None:
    """Add each reply's receipts (current status per participant) and their history."""
    by_sid = {r["message_sid"]: r for r in replies if r["message_sid"]}
    if not by_sid:
        return
    sids = list(by_sid)
    receipts = {}
    for row in conn.execute(select(RECEIPTS).where(RECEIPTS.c.message_sid.in_(sids))
                            .order_by(RECEIPTS.c.id)):
        receipts[row.receipt_sid] = {
            "receipt_sid": row.receipt_sid, "participant_sid": row.participant_sid,
            "status": row.status, "updated_at": row.updated_at,
            "error": _error(row.error_code) if row.error_status else None,
            "failed_as": row.error_status, "history": []}
        by_sid[row.message_sid]["receipts"].append(receipts[row.receipt_sid])
    for row in conn.execute(select(HISTORY).where(HISTORY.c.message_sid.in_(sids))
                            .order_by(HISTORY.c.id)):
        if row.receipt_sid in receipts:
            receipts[row.receipt_sid]["history"].append({
                "status": row.status, "error_code": row.error_code or None,
                "source": row.source, "received_at": row.received_at})


def preview(message: dict) -> str | None:
    """The message's first words, or what it carried when it has no text."""
    body = (message.get("body") or "").strip()
    if body:
        words = " ".join(body.split())
        return words if len(words) <= PREVIEW else words[:PREVIEW - 1].rstrip() + "…"
    media = message.get("media") or []
    if media:
        return f"[{len(media)} attachment{'s' if len(media) > 1 else ''}: {', '.join(media)}]"
    return None


def _message(row) -> dict:
    """An event as shown: who, on which channel, what (text, media), and the decision."""
    return {"conversation_sid": row.conversation_sid, "message_sid": row.message_sid,
            "received_at": row.received_at, "outcome": row.outcome,
            "kind": _kind(row.outcome_kind), "reason": row.reason,
            "reason_text": status.reason_text(row.reason), "rule": row.rule,
            "author": row.author, "channel": row.channel, "body": row.body,
            "media": row.media_types.split(",") if row.media_types else [],
            "from": _speaker(row.reason)}


def _speaker(reason: str | None) -> str | None:
    """Who wrote a message: customer, agent, bot (our own) or system; None: no message."""
    if reason is None:
        return None
    return {"AGENT_MESSAGE": "agent", "OWN_MESSAGE": "bot",
            "SYSTEM_MESSAGE": "system"}.get(reason, "customer")


def _kind(name: str | None) -> str | None:
    """The outcome's kind as people read it ('reply queued'); stored by its name."""
    if not name:
        return None
    return Kind[name].value if name in Kind.__members__ else name.lower()


def _error(code: int | None, message: str | None = None) -> dict | None:
    if not code and not message:
        return None
    return {"code": code or None, "meaning": describe(code), "fix": fix(code),
            "message": message}
