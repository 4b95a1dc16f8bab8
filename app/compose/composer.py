"""Composer: decides the deferred messages once due, in every serving process, as a loop
under the process's supervisor (jobs/supervisor.py), like the sender.

One decision code path for both moments: the webhook and the composer call the same
`decide` (app/autoreply/decision.py) on a state read under the conversation's row lock;
the webhook's call stops at DEFERRED, the composer's (`composing=True`) goes on to choose
the reply for the burst's text. The answer model, when configured (app/answering/), is
consulted between a first decision on a plain read and the final one under the lock,
outside any transaction: its verdict is an input of `decide`, which stays pure.

It leases due compositions in batches, composes each on a small thread pool (a model
call may take ANSWER_MODEL_TIMEOUT), and polls every SENDER_POLL_SECONDS (a deferral
committed in this process wakes it at once, for the model's "due now").
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime

from sqlalchemy.exc import SQLAlchemyError

from ..autoreply import ConversationState, Decision, Inbound, Policy, decide
from ..delivery import outbox
from ..handlers.messages import customer_addresses, outcome
from ..logs import kv, log_context
from ..pipeline import claims, faq_log, handoffs, state
from ..pipeline.outcome import Kind, Outcome
from ..pipeline.state import StateReader
from ..store.database import Database
from . import pending

log = logging.getLogger(__name__)
THREADS = 4  # compositions in flight per process
MAX_ATTEMPTS = 5  # a burst whose composition keeps failing is dropped after this
RETRY_SECONDS = 5.0
# With neither a debounce nor the model, only a burst left by an earlier configuration
# can be due: look for one now and then, not every second (a write turn on SQLite).
IDLE_POLL_SECONDS = 30.0
COMPOSE_FAILED = "COMPOSE_FAILED"  # the stored reason of a burst dropped after MAX_ATTEMPTS


class Composer:
    name = "composer"

    def __init__(self, db: Database, reader: StateReader, policy: Policy, *,
                 poll_seconds: float, lease_seconds: float, answerer=None,
                 on_queued: Callable[[], None] | None = None):
        self.db = db
        self.reader = reader
        self.policy = policy
        self.poll_seconds = poll_seconds
        self.lease_seconds = lease_seconds
        self.answerer = answerer  # app/answering: the answer model, or None
        self.on_queued = on_queued or (lambda: None)  # wakes the sender
        self._wake = threading.Event()
        self._slots = threading.Semaphore(THREADS)

    def wake(self) -> None:
        self._wake.set()

    def interrupt(self) -> None:
        self._wake.set()

    def run(self, stopping: threading.Event) -> None:
        """Compose what is due until `stopping` is set; let the compositions in flight end."""
        with ThreadPoolExecutor(THREADS, thread_name_prefix="compose") as pool:
            while not stopping.is_set():
                self._wake.clear()
                free = 0
                while self._slots.acquire(blocking=False):
                    free += 1
                try:
                    leased = self._lease(free) if free else []
                except SQLAlchemyError as exc:
                    log.warning("composer cannot reach the database: %s",
                                exc.__class__.__name__)
                    leased = []
                for _ in range(free - len(leased)):
                    self._slots.release()
                for item in leased:
                    pool.submit(self._compose_and_release, item)
                if not leased:
                    self._wake.wait(self.poll_seconds if self.policy.composes_later
                                    else IDLE_POLL_SECONDS)

    def run_until_idle(self, *, ahead: float = 0.0) -> int:
        """Compose every composition due now (or within `ahead` seconds) in this thread;
        return how many were composed (dropped ones included)."""
        done = 0
        while leased := self._lease(THREADS, ahead=ahead):
            for item in leased:
                self._compose_logged(item)
                done += 1
        return done

    def _lease(self, limit: int, *, ahead: float = 0.0) -> list[pending.Leased]:
        with self.db.transaction() as conn:
            return pending.lease_due(conn, limit, self.lease_seconds, ahead=ahead)

    def _compose_and_release(self, item: pending.Leased) -> None:
        try:
            self._compose_logged(item)
        finally:
            self._slots.release()
            self._wake.set()

    def _compose_logged(self, item: pending.Leased) -> None:
        with log_context(conversation_sid=item.conversation_sid,
                         message_sid=item.message_sid, request_id=item.request_id):
            try:
                self.compose(item)
            except Exception as exc:  # nobody awaits this: log, and try again later
                log.exception("composing a reply failed %s", kv(attempt=item.attempts))
                self._give_back(item, exc)

    def _give_back(self, item: pending.Leased, exc: Exception) -> None:
        try:
            with self.db.transaction() as conn:
                if item.attempts >= MAX_ATTEMPTS:
                    pending.settle(conn, item)
                    claims.record_later_outcome(conn, f"message:{item.message_sid}", Outcome(
                        Kind.IGNORED, f"composition failed {item.attempts} times: "
                        f"{type(exc).__name__}", reason=COMPOSE_FAILED))
                    log.error("composition dropped after %d attempts", item.attempts)
                else:
                    pending.retry_later(conn, item, RETRY_SECONDS * item.attempts)
        except SQLAlchemyError:
            pass  # its lease runs out and another composer takes it over

    def compose(self, item: pending.Leased) -> Decision | None:
        """Decide the burst and record the decision (and queue its reply) once; None when
        a message joined the burst meanwhile (it is composed again once quiet)."""
        now = datetime.now(UTC)
        message = Inbound(body=pending.decided_text(item.body), author=item.author,
                          channel=(item.channel or "").upper(), attributes=None,
                          participant_sid=item.participant_sid,
                          received_at=item.received_at.replace(tzinfo=UTC))
        addresses = customer_addresses(message)
        enabled = self.policy.switch(self.reader.autoreply_switch())
        verdict = None
        if self.answerer is not None:
            seen = self.reader.conversation(item.conversation_sid, addresses, now)
            burst = _burst(seen.state, item)
            first = decide(message, burst, self.policy, now, enabled=enabled, composing=True)
            verdict = self.answerer.consult(item.conversation_sid, item.message_sid, message,
                                            first, burst, self.policy, now)
        with self.db.transaction() as conn:
            # The conversation's lock first, then the burst's: a webhook takes them in
            # this order (its decision, then pending.defer or drop), and the opposite
            # order deadlocked with it on PostgreSQL (a 503, and the message lost).
            seen = state.lock_and_read(conn, item.conversation_sid, addresses, now)
            if not pending.settle(conn, item):
                log.info("composition dropped %s", kv(
                    outcome="a message joined the burst; composed again once quiet"))
                return None
            decision = decide(message, _burst(seen.state, item), self.policy, now,
                              enabled=enabled, composing=True, **_with(verdict))
            changes = faq_log.offer_changes(decision, message.body)
            if decision.replies:
                changes["last_reply_at"] = now.astimezone(UTC).replace(tzinfo=None)
            state.overwrite(conn, item.conversation_sid, seen, **changes)
            handoffs.record(conn, item.conversation_sid, decision, message.body, addresses, now)
            if decision.faq is not None:
                faq_log.record(conn, item.message_sid, item.conversation_sid, message.body,
                               decision.faq)
            result = outcome(decision)
            if decision.replies:
                note = _queue(conn, item, message, decision, self.policy)
                result = result.with_notes([note] if note else [])
            claims.record_later_outcome(conn, f"message:{item.message_sid}", result)
        log.info("composed %s", kv(messages=item.messages, outcome=result))
        if decision.replies:
            self.on_queued()
        return decision


def _burst(seen: ConversationState, item: pending.Leased) -> ConversationState:
    """The state as the burst's first message saw it: the webhook counted each message
    of the burst already (a greeting is for a conversation's first burst)."""
    return replace(seen, inbound_before=max(0, seen.inbound_before - item.messages))


def _with(verdict) -> dict:
    return {} if verdict is None else {"assist": verdict}


def _queue(conn, item: pending.Leased, message: Inbound, decision: Decision,
           policy: Policy) -> str | None:
    reply = decision.reply
    return outbox.queue_reply(conn, outbox.NewReply(
        conversation_sid=item.conversation_sid, in_reply_to=item.message_sid,
        author=policy.bot_identity, body=reply.body, content_sid=reply.content_sid,
        content_variables=reply.content_variables, customer=message.author,
        participant_sid=message.participant_sid, channel=item.channel,
        message_at=item.received_at, request_id=item.request_id, media=reply.media))
