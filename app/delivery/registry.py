"""The sender registry: live senders share TWILIO_CONCURRENCY_LIMIT through the database.

Every sender (the one in each web worker, each dedicated `sender` process) beats once
a second: it upserts its row and, in the same transaction (serialized: an advisory
lock on PostgreSQL, the writer lock on SQLite), takes its *share*, the most calls it
may hold in flight until its next beat. The shares of live senders never add up to
more than the limit:

- a sender's fair share is the limit split evenly among the live senders (by id);
- it takes at most what the others' published shares leave free, so a newcomer grows
  into its share as the others shrink into theirs, within a beat or two;
- it publishes at least what it may still hold (its share in force during the beat,
  and its calls in flight), and lowers its local limit only after that.

A sender silent for `stale` seconds is dead: its share returns to the others (the
sender passes FENCE_SECONDS + half its lease: longer than any call it may have begun
before its beats failed). A sender whose own beats have failed for FENCE_SECONDS starts
no new call (the others may soon count it dead). A sender that stops deletes its row.
"""

from __future__ import annotations

import os
import secrets
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache, partial

from sqlalchemy import Connection, bindparam, delete, select, text, update

from ..store import clock
from ..store.database import dialect_insert
from ..store.models import SenderHeartbeat

HEARTBEAT_SECONDS = 1.0
FENCE_SECONDS = 5.0
STALE_SECONDS = 30.0  # the default lease's (50 s) worth: FENCE_SECONDS + 25 s
_LOCK_KEY = 0x5E4D  # pg_advisory_xact_lock key of the registry

SENDERS = SenderHeartbeat.__table__


def new_id() -> str:
    """host:pid:random, unique across hosts and restarts."""
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{secrets.token_hex(4)}"


@dataclass(frozen=True)
class Beat:
    share: int  # calls this sender may hold in flight until its next beat
    live: int  # live senders, this one included
    peers_window: int | None = None  # the others' mean adaptive window (None: alone)


@cache
def _upsert(dialect_name: str):
    now = clock.now(dialect_name)
    statement = dialect_insert(dialect_name)(SENDERS).values(
        id=bindparam("id"), heartbeat_at=now, started_at=now, share=bindparam("held"),
        concurrency=bindparam("concurrency"), in_flight=bindparam("in_flight"),
        sent=bindparam("sent"))
    return statement.on_conflict_do_update(index_elements=["id"], set_={
        "heartbeat_at": now, "concurrency": statement.excluded.concurrency,
        "in_flight": statement.excluded.in_flight, "sent": statement.excluded.sent})


@cache
def _live(dialect_name: str):
    return (select(SENDERS.c.id, SENDERS.c.share, SENDERS.c.concurrency)
            .where(SENDERS.c.heartbeat_at > clock.later(dialect_name, "stale"))
            .order_by(SENDERS.c.id))


@cache
def _forget_dead(dialect_name: str):
    return delete(SENDERS).where(SENDERS.c.heartbeat_at <= clock.later(dialect_name, "gone"))


_PUBLISH = update(SENDERS).where(SENDERS.c.id == bindparam("sender_id")).values(
    share=bindparam("share"))


def beat(conn: Connection, sender_id: str, *, limit: int, held: int, in_flight: int,
         concurrency: int, sent: int, stale: float = STALE_SECONDS) -> Beat:
    """Record that this sender lives and take its share. `held` is the share in force
    while this runs; the published share is never less than it or `in_flight`."""
    dialect = conn.dialect.name
    if dialect == "postgresql":
        conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _LOCK_KEY})
    conn.execute(_upsert(dialect), {"id": sender_id, "held": held, "concurrency": concurrency,
                                    "in_flight": in_flight, "sent": sent})
    conn.execute(_forget_dead(dialect), {"gone": -60 * stale})
    rows = conn.execute(_live(dialect), {"stale": -stale}).all()
    ids = [r.id for r in rows]
    rank = ids.index(sender_id)
    fair = limit // len(ids) + (1 if rank < limit % len(ids) else 0)
    free = limit - sum(r.share for r in rows if r.id != sender_id)
    share = max(0, min(fair, free))
    conn.execute(_PUBLISH, {"sender_id": sender_id, "share": max(share, held, in_flight)})
    peers = [r.concurrency for r in rows if r.id != sender_id]
    return Beat(share=share, live=len(ids),
                peers_window=round(sum(peers) / len(peers)) if peers else None)


def leave(conn: Connection, sender_id: str) -> None:
    """A stopping sender hands its share back at once."""
    conn.execute(delete(SENDERS).where(SENDERS.c.id == sender_id))


@dataclass(frozen=True)
class LiveSender:
    id: str
    share: int
    concurrency: int
    in_flight: int
    sent: int
    heartbeat_age: float  # seconds since its last beat


def live(conn: Connection, stale: float = STALE_SECONDS) -> list[LiveSender]:
    """The senders alive now (for doctor, the dashboard and metrics)."""
    dialect = conn.dialect.name
    now = clock.now(dialect)
    rows = conn.execute(select(SENDERS, now.label("now"))
                        .where(SENDERS.c.heartbeat_at > clock.later(dialect, "stale"))
                        .order_by(SENDERS.c.id), {"stale": -stale}).all()
    return [LiveSender(r.id, r.share, r.concurrency, r.in_flight, r.sent,
                       max(0.0, (r.now - r.heartbeat_at).total_seconds())) for r in rows]


def live_senders(stale: float) -> Callable[[Connection], list[LiveSender]]:
    """`live` with senders stale after `stale` seconds: what the metrics' collector reads
    (app/observability/collectors.py), handed to it by the app."""
    return partial(live, stale=stale)
