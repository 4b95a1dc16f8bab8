"""Opt-outs: customers Twilio refused to message; where they are recorded and cleared.

Twilio answers a send with error 21610 when the recipient replied STOP (or its carrier
told Twilio so); the sender records the reply's customer then, in the transaction that
marks the reply failed. A customer is recorded by every address we know them by (the
message author's address, `whatsapp:+...` or `+1...`, and the participant SID `MB...`),
as given: the decision asks about the same values. START, UNSTOP or YES clears them.
An opt-out also ends the customer's wait for an agent, in every conversation they wait
in (`end_waits`): nobody may write to them now. The bot stays silent there as before (a
handoff's silence is `handoff_at`, kept). The caller decides the transaction; nothing
here commits. The decision's read of them is part of the conversation-state statement
(pipeline/state.py).
https://www.twilio.com/docs/api/errors/21610
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache

from sqlalchemy import Connection, bindparam, delete, exists, update

from ..store.database import dialect_insert
from ..store.models import Conversation, OptOut, ProcessedEvent, utcnow

OPT_OUTS = OptOut.__table__
CONVERSATIONS = Conversation.__table__
EVENTS = ProcessedEvent.__table__

_CLEAR = delete(OPT_OUTS).where(OPT_OUTS.c.address.in_(bindparam("addresses", expanding=True)))


@cache
def _insert(dialect_name: str):
    # The first opt-out stays: its time and conversation say when it began.
    return (dialect_insert(dialect_name)(OPT_OUTS)
            .on_conflict_do_nothing(index_elements=["address"]))


def _known(addresses: Iterable[str | None]) -> list[str]:
    """The addresses given, without None, empty ones or repeats."""
    return list(dict.fromkeys(a for a in addresses if a))


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
    end_waits(conn, known, conversation_sid)


def end_waits(conn: Connection, addresses: Iterable[str | None],
              conversation_sid: str | None = None) -> None:
    """These addresses opted out: the conversations waiting for an agent that they wrote
    in (and `conversation_sid`) wait no more. Only waiting conversations are looked at
    (an index range), each by an index probe of its messages."""
    known = _known(addresses)
    c = CONVERSATIONS.c
    wrote = exists().where(EVENTS.c.conversation_sid == c.sid, EVENTS.c.author.in_(known)) \
        if known else None
    if wrote is None and not conversation_sid:
        return
    which = wrote if not conversation_sid else (
        (c.sid == conversation_sid) | wrote if wrote is not None else c.sid == conversation_sid)
    conn.execute(update(CONVERSATIONS).where(c.waiting_since.is_not(None), which)
                 .values(waiting_since=None))


def clear(conn: Connection, addresses: Iterable[str | None]) -> int:
    """Forget the opt-outs of these addresses (they opted in again); return how many."""
    known = _known(addresses)
    if not known:
        return 0
    return conn.execute(_CLEAR, {"addresses": known}).rowcount
