"""The conversations overview (the dashboard's front page, `/api/conversations`) and
its search: each conversation by its latest message, a customer's or an agent's, newest
first, with its customer, the message's first words and one state; filtered by state
and channel, or found by a customer's address or a SID.

    page(conn, state=None, channel=None, limit=25, before=None)
        -> {"conversations": [...], "next": cursor or None, "scanned_to": ...}
    search(conn, text, limit=25) -> {"conversations": [...], "message_sid", "anchor", ...}

Bounded whatever the tables hold (1,000,000 events in bench/): a page walks the newest
messages by `received_at` in batches of SCAN, at most MAX_SCAN rows (a filter that
matches rarely returns a shorter page and the cursor to go on from); conversations
waiting for an agent are read from their own index; a search is index ranges. One
conversation's thread, and the reads both share, are in conversations.py.
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlalchemy import Connection, func, select

from . import status
from .conversations import (
    CONVERSATIONS,
    EVENT_COLUMNS,
    EVENTS,
    MESSAGE,
    OPT_OUTS,
    REPLIES,
    SPOKEN,
    WAITING,
    latest_message,
    message_record,
    preview,
    replies_for,
)

SCAN = 500  # newest messages read per batch of the overview
MAX_SCAN = 2000  # at most this many per page: a rare filter gives a shorter page
_SID = re.compile(r"(CH|IM)[0-9a-fA-F]{32}")
# What the overview's scan reads of each message; the rest only for the rows shown.
_SCAN_COLUMNS = (EVENTS.c.id, EVENTS.c.conversation_sid, EVENTS.c.message_sid,
                 EVENTS.c.reason, EVENTS.c.received_at, EVENTS.c.channel, EVENTS.c.outcome,
                 EVENTS.c.author)


def page(conn: Connection, *, state: str | None = None, channel: str | None = None,
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
        select(*EVENT_COLUMNS).where(EVENTS.c.id.in_(ids)))} if ids else {}
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
        message = message_record(row)
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
