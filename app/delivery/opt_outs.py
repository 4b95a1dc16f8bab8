"""Opt-outs: customers Twilio refused to message; where they are recorded and cleared.

Twilio answers a send with error 21610 when the recipient replied STOP (or its carrier
told Twilio so); the sender records the reply's customer then, in the transaction that
marks the reply failed. A customer is recorded by every address we know them by (the
message author's address, `whatsapp:+...` or `+1...`, and the participant SID `MB...`),
as given: the decision asks about the same values. START, UNSTOP or YES clears them.
An opt-out also ends the customer's wait for an agent (`end_wait`): nobody may write to
them now. The caller decides the transaction; nothing here commits. The decision's read
of them is part of the conversation-state statement (pipeline/state.py).
https://www.twilio.com/docs/api/errors/21610
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from sqlalchemy import Connection, bindparam, delete, update

from ..store.database import dialect_insert
from ..store.models import Conversation, OptOut, utcnow

OPT_OUTS = OptOut.__table__
CONVERSATIONS = Conversation.__table__
_WAIT_ENDS = (update(CONVERSATIONS)
              .where(CONVERSATIONS.c.sid == bindparam("conversation"),
                     CONVERSATIONS.c.waiting_since.is_not(None))
              .values(waiting_since=None))

_CLEAR = delete(OPT_OUTS).where(OPT_OUTS.c.address.in_(bindparam("addresses", expanding=True)))


@cache
def _insert(dialect_name: str):
    # The first opt-out stays: its time and conversation say when it began.
    return (dialect_insert(dialect_name)(OPT_OUTS)
            .on_conflict_do_nothing(index_elements=["address"]))


def _known(addresses: Iterable[str | None]) -> list[str]:
    """The addresses given, without None, empty ones or repeats, sorted: two
    transactions inserting the same customer's rows lock them in one order."""
    return sorted({a for a in addresses if a})


def record(conn: Connection, addresses: Iterable[str | None], *, error_code: int | None,
           conversation_sid: str | None) -> None:
    """Record that these addresses opted out (those recorded already stay as they are)."""
    known = _known(addresses)
    if not known:
        return
    now = utcnow()
    conn.execute(_insert(conn.dialect.name), [
        {"address": address, "error_code": error_code, "conversation_sid": conversation_sid,
         "opted_out_at": now}
        for address in known
    ])


def end_wait(conn: Connection, conversation_sid: str | None) -> None:
    """The customer of this conversation opted out: it waits for an agent no more (the
    handoff's silence stays: START ends it, pipeline/handoffs.py). Only the conversation
    the caller holds (its unit is ordered by it, store/group_commit.py), and before the
    opt-out's rows, as every caller does: the same lock order everywhere. The customer's
    other conversations leave the waiting list as it is read (timeline/conversations.py:
    WAITING)."""
    if conversation_sid:
        conn.execute(_WAIT_ENDS, {"conversation": conversation_sid})


def clear(conn: Connection, addresses: Iterable[str | None]) -> int:
    """Forget the opt-outs of these addresses (they opted in again); return how many."""
    known = _known(addresses)
    if not known:
        return 0
    return conn.execute(_CLEAR, {"addresses": known}).rowcount
