"""Processor: the straight path from a verified Event to a committed decision.

    validate fields -> handlers decide -> claim with the outcome (dedupe) -> their
    writes -> commit -> wake the sender

Everything an event changes is written in one transaction with its claim, so a crash
leaves either nothing (Twilio's webhook failed, catch-up can find it) or the claim and
its queued reply together (the sender will send it).
"""

from __future__ import annotations

import logging

from . import claims
from .db import Database
from .events import Event
from .logs import kv
from .router import Context, Router

log = logging.getLogger(__name__)

DUPLICATE = "duplicate"
UNHANDLED = "accepted"


class Processor:
    def __init__(self, db: Database, router: Router, settings: dict, on_commit=None):
        self.db = db
        self.router = router
        self.settings = settings
        self.on_commit = on_commit or (lambda: None)

    def process(self, event: Event) -> str:
        """Handle one post-event exactly once; return what was done (for logs and tests)."""
        fields = dict(event=event.type, conversation=event.get("ConversationSid"),
                      message_sid=event.get("MessageSid"), author=event.get("Author"))
        if not self.router.handles(event.type):
            level = logging.DEBUG if event.is_known else logging.INFO
            note = "no handler" if event.is_known else "unknown event type, accepted"
            log.log(level, "event %s", kv(**fields, outcome=note))
            return UNHANDLED
        self.router.validate(event)
        outcome = self.db.group_commit.run(lambda conn: self._apply(conn, event))
        if outcome == DUPLICATE:
            log.info("event %s", kv(**fields, outcome="duplicate, already processed"))
        else:
            log.info("event %s", kv(**fields, outcome=outcome))
            self.on_commit()
        return outcome

    def _apply(self, conn, event: Event) -> str:
        """Let the handlers decide, claim the event with their outcome, then write."""
        context = Context(self.settings)
        outcome = "; ".join(self.router.dispatch(event, context))
        key = event.claim_key
        claim_id = claims.claim(conn, event, key, outcome) if key else None
        if key and claim_id is None:
            return DUPLICATE
        notes = [note for effect in context.effects if (note := effect(conn))]
        if notes:
            outcome = "; ".join([outcome, *notes])
            if claim_id is not None:
                claims.record_outcome(conn, claim_id, outcome)
        return outcome

    def record_only(self, event: Event, outcome: str) -> str:
        """Claim an event without handling it (catch-up decided already); return the outcome."""
        with self.db.transaction() as conn:
            if claims.claim(conn, event, event.claim_key, outcome) is None:
                return DUPLICATE
        log.info("event %s", kv(event=event.type, conversation=event.get("ConversationSid"),
                                message_sid=event.get("MessageSid"), outcome=outcome))
        return outcome
