"""Catch-up: answer messages whose webhook never arrived, fetch receipts that never came.

Twilio does not resend a Conversations webhook that failed, so a message that arrived
while the server was down is otherwise never answered. Catch-up lists recent messages
of active conversations through the REST API and feeds each one it has not seen through
the same path as a webhook (same claim key: a message is still answered once). A
customer message that someone (the bot or an agent) already answered later in the
conversation is recorded but not answered again. Replies whose delivery receipt never
came get their receipts fetched, at most RECEIPT_CHECKS per run and each reply once
(chat participants never get receipts: asking again would only cost API calls). An
API error in one conversation or for one reply is logged and counted, and the run goes
on with the others.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, select, update

from config import JobSettings

from ..autoreply import Policy, keywords, loop_guard
from ..errors import BadRequest
from ..handlers.messages import inbound
from ..logs import kv
from ..pipeline.events import Event, source_of
from ..pipeline.outcome import Kind, Outcome
from ..pipeline.processor import Processor
from ..store.database import Database
from ..store.models import UNCONFIRMED, Reply, utcnow
from ..twilio.errors import ApiError
from ..twilio.interface import Message

log = logging.getLogger(__name__)
ANSWERED_LATER = Outcome(Kind.IGNORED, "answered later in the conversation (catch-up)")
RECEIPT_CHECKS = 200  # replies whose receipts one run fetches, oldest first
RECEIPT_GRACE = timedelta(minutes=1)  # receipts usually arrive by webhook within this

REPLIES = Reply.__table__
_UNCONFIRMED = (
    select(REPLIES.c.id, REPLIES.c.conversation_sid, REPLIES.c.twilio_message_sid)
    # The predicate as literal SQL, the same text as the partial index's, so that the
    # planner can use the index (a bound 'sent' would not match it).
    .where(UNCONFIRMED, REPLIES.c.sent_at >= bindparam("since"),
           REPLIES.c.sent_at < bindparam("until"))
    .order_by(REPLIES.c.sent_at)
    .limit(RECEIPT_CHECKS)
)
_CHECKED = (update(REPLIES).where(REPLIES.c.id == bindparam("reply_id"))
            .values(receipts_checked_at=bindparam("now")))


@dataclass
class Report:
    conversations: int = 0
    messages_seen: int = 0
    replies_queued: int = 0
    answered_already: int = 0
    receipts_checked: int = 0
    receipts_fetched: int = 0
    failures: int = 0

    def __str__(self) -> str:
        return kv(**self.__dict__)


class CatchUp:
    def __init__(self, db: Database, client, processor: Processor, policy: Policy,
                 settings: JobSettings):
        self.db = db
        self.client = client
        self.processor = processor
        self.policy = policy
        self.settings = settings

    def run(self, since: datetime) -> Report:
        report = Report()
        for conversation_sid in self.client.active_conversation_sids(
                self.settings.catch_up_max_conversations):
            report.conversations += 1
            try:
                self._conversation(conversation_sid, since, report)
            except ApiError as exc:
                report.failures += 1
                log.warning("catch-up skipped a conversation %s", kv(
                    conversation=conversation_sid, status=exc.status, code=exc.code,
                    error=exc.message))
        self._receipts(since, report)
        log.info("catch-up done %s", report)
        return report

    def _conversation(self, conversation_sid: str, since: datetime, report: Report) -> None:
        answered_later = False
        todo = []  # (event, answered already), newest first
        for message in self.client.recent_messages(conversation_sid, limit=50):  # newest first
            if message.date_created and _naive(message.date_created) < since:
                break
            report.messages_seen += 1
            try:  # checked like a webhook: a message one would be refused for is skipped
                event = _as_event(message)
                customer = bool(message.author) and loop_guard(inbound(event), self.policy) is None
            except BadRequest as exc:
                self._skipped(conversation_sid, message.sid, exc, report)
                continue
            todo.append((event, customer and answered_later))
            # What an agent or the bot wrote answered the customer's older messages; a
            # STOP, read first here, means they are not to be answered either.
            answered_later = (answered_later or not customer or keywords.opts_out(
                event.get("Body", ""), self.policy.compliance_keywords))
        # Newest first, so that under the cooldown the latest question gets the answer;
        # with a wait before answering (AUTO_REPLY_DEBOUNCE), oldest first, as they came:
        # the burst reads in order and is answered in reply to its newest message.
        for event, answered in (reversed(todo) if self.policy.composes_later else todo):
            try:
                if answered:
                    outcome = self.processor.record_only(event, ANSWERED_LATER)
                    if outcome.kind is not Kind.DUPLICATE:
                        report.answered_already += 1
                elif self.processor.process(event).kind is Kind.REPLY_QUEUED:
                    report.replies_queued += 1
            except BadRequest as exc:
                self._skipped(conversation_sid, event.get("MessageSid"), exc, report)

    @staticmethod
    def _skipped(conversation_sid: str, message_sid, exc: BadRequest, report: Report) -> None:
        report.failures += 1
        log.warning("catch-up skipped a message %s", kv(
            conversation=conversation_sid, message_sid=message_sid, error=exc.message))

    def _receipts(self, since: datetime, report: Report) -> None:
        """Fetch receipts of replies sent in the window that never got one, each once."""
        with self.db.read() as conn:
            unconfirmed = conn.execute(_UNCONFIRMED, {
                "since": since, "until": utcnow() - RECEIPT_GRACE}).all()
        for reply_id, conversation_sid, message_sid in unconfirmed:
            try:
                receipts = self.client.receipts(conversation_sid, message_sid)
            except ApiError as exc:
                report.failures += 1
                log.warning("catch-up could not fetch receipts %s", kv(
                    conversation=conversation_sid, message_sid=message_sid,
                    status=exc.status, error=exc.message))
                continue
            for receipt in receipts:
                report.receipts_fetched += 1
                try:
                    self.processor.process(_receipt_event(conversation_sid, message_sid, receipt))
                except BadRequest as exc:  # as a webhook with this receipt would be refused
                    report.failures += 1
                    log.warning("catch-up skipped a receipt %s", kv(
                        message_sid=message_sid, error=exc.message))
            with self.db.transaction() as conn:
                conn.execute(_CHECKED, {"reply_id": reply_id, "now": utcnow()})
            report.receipts_checked += 1


def _receipt_event(conversation_sid: str, message_sid: str, receipt: dict) -> Event:
    return Event.from_params({
        "EventType": "onDeliveryUpdated", "ConversationSid": conversation_sid,
        "MessageSid": message_sid, "DeliveryReceiptSid": receipt["receipt_sid"],
        "Status": receipt["status"] or "", "ErrorCode": str(receipt["error_code"] or 0),
        "ParticipantSid": receipt["participant_sid"] or "",
        "ChannelMessageSid": receipt["channel_message_sid"] or "", "Source": "catch-up",
    })


def _as_event(message: Message) -> Event:
    """The message as its webhook would have carried it (the REST resource names no
    channel: the author's address tells it), so the same decision applies."""
    params = {
        "EventType": "onMessageAdded", "ConversationSid": message.conversation_sid,
        "MessageSid": message.sid, "Author": message.author or "", "Body": message.body or "",
        "Attributes": message.attributes or "{}", "Index": str(message.index or 0),
        "Source": source_of(message.author or ""), "CatchUp": "true",
    }
    if message.date_created:
        params["DateCreated"] = message.date_created.astimezone(UTC).isoformat()
    return Event.from_params(params)


def _naive(moment: datetime) -> datetime:
    """Naive UTC, as the database stores times."""
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment
