"""Processor: the straight path from a verified Event to a committed decision.

    validate fields (a malformed one is absent, noted in the outcome) ->
    handlers decide (this thread, may read state) ->
    claim with the outcome + their writes (one transaction, batched with other
    requests' by group commit) -> after-commit calls, the log line -> wake the sender

Everything an event changes is written in one transaction with its claim, so a crash
leaves either nothing (Twilio's webhook failed, catch-up can find it) or the claim and
its queued reply together (the sender will send it). The batched unit only claims and
writes: deciding and logging happen in the request's own thread, so a unit redone
after a failed batch logs nothing twice, and a rolled-back write logs nothing at all.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import partial

from ..autoreply import Policy
from ..logs import kv
from ..store.database import Database
from . import claims
from .events import Event
from .outcome import ACCEPTED, DUPLICATE, Outcome, combine
from .router import Context, Effect, Router
from .state import StateReader

log = logging.getLogger(__name__)


class Processor:
    def __init__(self, db: Database, router: Router, policy: Policy,
                 on_commit: Callable[[], None] | None = None, *, keep_texts: bool = True):
        self.db = db
        self.keep_texts = keep_texts  # store messages' texts (MESSAGE_TEXT_RETENTION > 0)
        self.router = router
        self.policy = policy
        self.state = StateReader(db)
        self.on_commit = on_commit or (lambda: None)

    def process(self, event: Event) -> Outcome:
        """Handle one post-event exactly once; return what was done."""
        if not self.router.handles(event.type):
            level = logging.DEBUG if event.is_known else logging.INFO
            note = "no handler" if event.is_known else "unknown event type, accepted"
            log.log(level, "event %s", kv(**_fields(event), outcome="; ".join(
                (note, *event.notes))))
            return ACCEPTED.with_notes(event.notes)
        self.router.validate(event)
        context = Context(self.state, self.policy)
        decided = combine(self.router.dispatch(event, context)).with_notes(event.notes)
        return self._commit(event, decided, context.effects, context.after)

    def record_only(self, event: Event, outcome: Outcome) -> Outcome:
        """Claim an event without handling it (catch-up decided already)."""
        return self._commit(event, outcome.with_notes(event.notes), [], [])

    def _commit(self, event: Event, decided: Outcome, effects: list[Effect],
                after: list[Callable[[], None]]) -> Outcome:
        outcome = self.db.group_commit.run(partial(_write, event, decided, effects,
                                                   keep_text=self.keep_texts),
                                           order=event.get("ConversationSid") or "")
        if outcome is DUPLICATE:
            log.info("event %s", kv(**_fields(event), outcome="duplicate, already processed"))
            return outcome
        for callback in after:
            callback()
        log.info("event %s", kv(**_fields(event), outcome=outcome))
        self.on_commit()
        return outcome


def _write(event: Event, outcome: Outcome, effects: list[Effect], conn, *,
           keep_text: bool = True) -> Outcome:
    """The batched unit: claim the event with its outcome, then make the handlers' writes."""
    claim_id = claims.claim(conn, event, outcome, keep_text=keep_text)
    if claim_id is None:
        return DUPLICATE
    decided = outcome
    for effect in effects:
        result = effect(conn)
        if isinstance(result, Outcome):
            outcome = result.with_notes(outcome.notes)
        elif result:
            outcome = outcome.with_notes([result])
    if outcome is not decided:
        claims.record_outcome(conn, claim_id, outcome)
    return outcome


def _fields(event: Event) -> dict:
    return dict(event=event.type, conversation=event.get("ConversationSid"),
                message_sid=event.get("MessageSid"), author=event.get("Author"))
