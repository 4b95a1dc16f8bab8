"""Claims: each event is recorded once, atomically, before any side effect.

`INSERT ... ON CONFLICT DO NOTHING` on the event's idempotency key: the first delivery
inserts the row, a retry, replay or concurrent duplicate inserts nothing (on PostgreSQL
it waits for the first transaction, then sees its row) and is answered 2xx without side
effects. Statements are built once and take their values as parameters: this is the
hot path.
"""

from __future__ import annotations

from functools import cache

from sqlalchemy import Connection, bindparam, update

from .. import formats
from ..store.database import dialect_insert
from ..store.driver import Statement
from ..store.models import (
    MEDIA_TYPES_LENGTH,
    OUTCOME_LENGTH,
    RULE_LENGTH,
    ProcessedEvent,
    utcnow,
)
from .events import Event
from .outcome import Outcome

EVENTS = ProcessedEvent.__table__


@cache
def _claim_statement(dialect_name: str):
    return Statement(dialect_insert(dialect_name)(EVENTS)
                     .on_conflict_do_nothing(index_elements=["key"]).returning(EVENTS.c.id))


_RECORD_OUTCOME = (update(EVENTS).where(EVENTS.c.id == bindparam("claim_id"))
                   .values(outcome=bindparam("new_outcome"), outcome_kind=bindparam("new_kind"),
                           reason=bindparam("new_reason"), rule=bindparam("new_rule")))


def claim(conn: Connection, event: Event, outcome: Outcome, *,
          keep_text: bool = True) -> int | None:
    """Record the event and its outcome under its key; return its row id, or None if it
    was already there. A message is stored as an operator reads it (`message`)."""
    return _claim_statement(conn.dialect.name).scalar(conn, {
        "key": event.claim_key, "event_type": event.type,
        "outcome": str(outcome)[:OUTCOME_LENGTH], "outcome_kind": outcome.kind.name,
        "reason": outcome.reason, "rule": _rule(outcome),
        "conversation_sid": event.get("ConversationSid"),
        "message_sid": event.get("MessageSid"), "received_at": utcnow(),
        **message(event, keep_text),
    })


_MEDIA_TYPE_KEYS = ("ContentType", "content_type", "contentType")  # casing unconfirmed


def message(event: Event, keep_text: bool) -> dict:
    """A message's author, channel (Source), text (unless MESSAGE_TEXT_RETENTION is 0)
    and its media's content types, comma-separated; nothing for other events."""
    if event.type != "onMessageAdded":
        return {"author": None, "channel": None, "body": None, "media_types": None}
    types = []
    if event.get("Media"):  # a JSON array, checked by fields.media
        for item in formats.load_json(event.get("Media")):
            found = [item[k] for k in _MEDIA_TYPE_KEYS if isinstance(item, dict) and k in item]
            types.append(str(found[0]).replace(",", " ")[:64] if found else "unknown")
    return {"author": event.get("Author"), "channel": (event.get("Source") or "").upper() or None,
            "body": event.get("Body") if keep_text else None,
            "media_types": ",".join(types)[:MEDIA_TYPES_LENGTH] or None}


def record_outcome(conn: Connection, claim_id: int, outcome: Outcome) -> None:
    conn.execute(_RECORD_OUTCOME, {
        "claim_id": claim_id, "new_outcome": str(outcome)[:OUTCOME_LENGTH],
        "new_kind": outcome.kind.name, "new_reason": outcome.reason,
        "new_rule": _rule(outcome)})


_RECORD_BY_KEY = (update(EVENTS).where(EVENTS.c.key == bindparam("claim_key"))
                  .values(outcome=bindparam("new_outcome"), outcome_kind=bindparam("new_kind"),
                          reason=bindparam("new_reason"), rule=bindparam("new_rule")))


def record_later_outcome(conn: Connection, claim_key: str, outcome: Outcome) -> None:
    """A decision made after the ack (app/compose/) replaces its event's stored outcome."""
    conn.execute(_RECORD_BY_KEY, {
        "claim_key": claim_key, "new_outcome": str(outcome)[:OUTCOME_LENGTH],
        "new_kind": outcome.kind.name, "new_reason": outcome.reason,
        "new_rule": _rule(outcome)})


def _rule(outcome: Outcome) -> str | None:
    return outcome.rule[:RULE_LENGTH] if outcome.rule else None
