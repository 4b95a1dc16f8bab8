"""Conversation state: read by handlers before they decide, checked and updated under the
conversation's lock in the claim's transaction.

A read is one statement on a connection its thread keeps, in autocommit and outside
the writer lock (Database.run_read), so a handler that reads does not slow the webhooks
that only write. The write side is optimistic: the claim's transaction updates the
conversation's row only if it still holds what the handler read (one upsert, which also
locks the row until the commit); when another message of the conversation got there
first, the caller reads again under that lock and decides again.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache

from sqlalchemy import Connection, bindparam, exists, func, select, update

from ..autoreply import ConversationState
from ..store import deadline
from ..store.database import Database, DatabaseUnavailable, dialect_insert
from ..store.driver import Statement
from ..store.models import Conversation, OptOut, Reply, Switch, utcnow

CONVERSATIONS = Conversation.__table__
REPLIES = Reply.__table__
OPT_OUTS = OptOut.__table__
SWITCHES = Switch.__table__
AUTOREPLY_SWITCH = "autoreply"
SWITCH_CACHE_SECONDS = 2.0  # how soon every instance obeys `flask autoreply off`


def _column(name):
    return (select(CONVERSATIONS.c[name]).where(CONVERSATIONS.c.sid == bindparam("sid"))
            .scalar_subquery())


_READ = Statement(select(
    _column("inbound_count"), _column("last_agent_at"), _column("last_reply_at"),
    _column("handoff_at"),
    select(func.count()).where(REPLIES.c.conversation_sid == bindparam("sid"),
                               REPLIES.c.created_at >= bindparam("hour_ago")).scalar_subquery(),
    # The author's address and the participant: two fixed parameters keep the statement
    # compiled once (an expanding IN is re-rendered on every execution).
    exists().where(OPT_OUTS.c.address.in_([bindparam("address"), bindparam("participant")])),
    _column("faq_offered"),
))
_LOCK = (select(CONVERSATIONS.c.sid).where(CONVERSATIONS.c.sid == bindparam("sid"))
         .with_for_update())
_SET = (update(CONVERSATIONS).where(CONVERSATIONS.c.sid == bindparam("conversation"))
        .values(inbound_count=bindparam("new_inbound_count"),
                last_inbound_at=func.coalesce(bindparam("new_last_inbound_at"),
                                              CONVERSATIONS.c.last_inbound_at),
                last_agent_at=bindparam("new_last_agent_at"),
                last_reply_at=bindparam("new_last_reply_at"),
                faq_offered=bindparam("new_faq_offered"), updated_at=bindparam("now")))
_READ_SWITCH = select(SWITCHES.c.value).where(SWITCHES.c.name == bindparam("name"))


@dataclass(frozen=True)
class Snapshot:
    """What a decision read: the state it saw, and the row it expects to update."""

    state: ConversationState
    inbound_count: int
    last_agent_at: datetime | None  # naive UTC, as stored
    last_reply_at: datetime | None


def read(conn: Connection, conversation_sid: str, addresses: list[str],
         now: datetime) -> Snapshot:
    """The conversation's state for a decision at `now` (aware UTC)."""
    naive_now = now.astimezone(UTC).replace(tzinfo=None)
    address, participant = ([a for a in addresses if a] + ["", ""])[:2]
    inbound, agent_at, reply_at, handoff_at, last_hour, opted_out, offered = _READ.first(
        conn, {"sid": conversation_sid, "hour_ago": naive_now - timedelta(hours=1),
               "address": address, "participant": participant})
    state = ConversationState(
        inbound_before=inbound or 0, last_reply_at=_aware(reply_at),
        replies_last_hour=last_hour or 0, last_agent_at=_aware(agent_at),
        opted_out=bool(opted_out), handoff_at=_aware(handoff_at),
        offered=tuple(filter(None, (offered or "").split(","))))
    return Snapshot(state, inbound or 0, agent_at, reply_at)


@cache
def _claim_row(dialect_name: str):
    """Insert the row, or update it only if it still holds what was read; RETURNING says
    whether it did. Either way the row stays locked until the commit."""
    stmt = dialect_insert(dialect_name)(CONVERSATIONS)
    c = CONVERSATIONS.c
    return Statement(stmt.on_conflict_do_update(
        index_elements=["sid"],
        set_={**{name: stmt.excluded[name] for name in (
            "inbound_count", "last_agent_at", "last_reply_at", "faq_offered", "updated_at")},
            # Only a customer's message moves it (None: keep what is stored).
            "last_inbound_at": func.coalesce(stmt.excluded.last_inbound_at, c.last_inbound_at)},
        where=(c.inbound_count == bindparam("seen_inbound"))
        & c.last_agent_at.is_not_distinct_from(bindparam("seen_agent_at"))
        & c.last_reply_at.is_not_distinct_from(bindparam("seen_reply_at")),
    ).returning(c.sid))


def update_if_unchanged(conn: Connection, conversation_sid: str, seen: Snapshot,
                        **values) -> bool:
    """Write the conversation's new values if nobody changed it since `seen` was read."""
    params = _values(conversation_sid, seen, values)
    params.update(seen_inbound=seen.inbound_count, seen_agent_at=seen.last_agent_at,
                  seen_reply_at=seen.last_reply_at)
    return _claim_row(conn.dialect.name).first(conn, params) is not None


def lock_and_read(conn: Connection, conversation_sid: str, addresses: list[str],
                  now: datetime) -> Snapshot:
    """Read the state again, holding the conversation's row lock (it exists by now)."""
    conn.execute(_LOCK, {"sid": conversation_sid})
    return read(conn, conversation_sid, addresses, now)


def overwrite(conn: Connection, conversation_sid: str, seen: Snapshot, **values) -> None:
    """Write the conversation's new values (under the lock taken by lock_and_read)."""
    params = _values(conversation_sid, seen, values)
    conn.execute(_SET, {"conversation": conversation_sid, "now": params["now"],
                        **{f"new_{k}": params[k] for k in (
                            "inbound_count", "last_inbound_at", "last_agent_at",
                            "last_reply_at", "faq_offered")}})


def _values(conversation_sid: str, seen: Snapshot, values: dict) -> dict:
    now = utcnow()
    return {
        "sid": conversation_sid,
        "inbound_count": values.get("inbound_count", seen.inbound_count),
        "last_inbound_at": values.get("last_inbound_at"),
        "last_agent_at": values.get("last_agent_at", seen.last_agent_at),
        "last_reply_at": values.get("last_reply_at", seen.last_reply_at),
        # A clarification's offer lasts until the bot says something else (faq_log).
        "faq_offered": values.get("faq_offered",
                                  ",".join(seen.state.offered) or None),
        "updated_at": now, "now": now,
    }



def _aware(moment: datetime | None) -> datetime | None:
    return moment.replace(tzinfo=UTC) if moment is not None else None


class StateReader:
    """What handlers may read: one statement each, never behind the writers."""

    def __init__(self, db: Database):
        self._db = db
        self._lock = threading.Lock()
        self._switch: tuple[float, bool | None] = (0.0, None)

    def conversation(self, conversation_sid: str, addresses: list[str] = (),
                     now: datetime | None = None) -> Snapshot:
        return self._db.run_read(lambda conn: read(
            conn, conversation_sid, list(addresses), now or datetime.now(UTC)))

    def autoreply_switch(self) -> bool | None:
        """The runtime switch (`flask autoreply on|off`), None when never set; read at
        most every SWITCH_CACHE_SECONDS per process."""
        checked, value = self._switch
        if time.monotonic() - checked < SWITCH_CACHE_SECONDS:
            return value
        # One thread reads, the others wait for it, within their request's deadline.
        if not self._lock.acquire(timeout=deadline.left(self._db.timeout)):
            raise DatabaseUnavailable("the autoreply switch was not read in time")
        try:
            checked, value = self._switch
            if time.monotonic() - checked < SWITCH_CACHE_SECONDS:
                return value  # read by the thread this one waited for
            stored = self._db.run_read(lambda conn: conn.execute(
                _READ_SWITCH, {"name": AUTOREPLY_SWITCH}).scalar())
            value = None if stored is None else stored == "on"
            self._switch = (time.monotonic(), value)
        finally:
            self._lock.release()
        return value


def set_switch(conn: Connection, name: str, value: str) -> None:
    stmt = dialect_insert(conn.dialect.name)(SWITCHES)
    conn.execute(stmt.on_conflict_do_update(
        index_elements=["name"],
        set_={"value": stmt.excluded.value, "updated_at": stmt.excluded.updated_at},
    ), {"name": name, "value": value, "updated_at": utcnow()})
