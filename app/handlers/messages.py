"""Answer customers: decide with the auto-reply policy, record the decision, queue the reply.

The decision itself is pure (app/autoreply): this module loads what it needs (the
conversation's state, the runtime switch, the clock), calls it in the request's thread,
and leaves the writes for the claim's transaction, where the conversation's row is
checked (and locked) before anything is written: two messages of one conversation
decided at the same instant on two workers cannot both pass the cooldown.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial

from .. import formats
from ..autoreply import Decision, Inbound, Policy, Reason, Reply, decide, keywords, loop_guard
from ..compose import pending
from ..delivery import opt_outs, outbox
from ..pipeline import faq_log, handoffs, state
from ..pipeline.events import Event
from ..pipeline.outcome import Kind, Outcome
from ..pipeline.router import Context, Router

router = Router()
NOT_CUSTOMERS = (Reason.OWN_MESSAGE, Reason.AGENT_MESSAGE, Reason.SYSTEM_MESSAGE)
# Messages no state counts and no state decides: every reply of ours comes back as one.
WRITES_NOTHING = (Reason.OWN_MESSAGE, Reason.SYSTEM_MESSAGE)


@router.register("onMessageAdded", requires=("ConversationSid", "MessageSid", "Author"))
def answer_customer(event: Event, ctx: Context) -> Outcome:
    """Decide whether and how to answer; leave the decision's writes for the claim."""
    message = inbound(event)
    guard = loop_guard(message, ctx.policy)
    if guard is not None and guard.reason in WRITES_NOTHING:
        return outcome(guard)  # our own reply coming back: no state to read or write
    now = datetime.now(UTC)
    sid = event.require("ConversationSid")
    addresses = customer_addresses(message)
    seen = ctx.state.conversation(sid, addresses, now)
    enabled = ctx.policy.switch(ctx.state.autoreply_switch())
    decision = decide(message, seen.state, ctx.policy, now, enabled=enabled)
    ctx.on_claim(partial(record_decision, Decided(
        conversation_sid=sid, message_sid=event.require("MessageSid"), message=message,
        addresses=addresses, policy=ctx.policy, enabled=enabled, now=now, seen=seen,
        decision=decision, request_id=event.request_id)))
    return outcome(decision)


@dataclass(frozen=True)
class Decided:
    """A decision taken in the request's thread, with what it was taken on: the claim's
    transaction records it, or takes it again if the conversation changed meanwhile."""

    conversation_sid: str
    message_sid: str
    message: Inbound
    addresses: list[str]  # the customer's, for opt-outs
    policy: Policy
    enabled: bool  # the runtime switch, as read
    now: datetime
    seen: state.Snapshot  # the conversation, as read
    decision: Decision
    request_id: str | None = None


def record_decision(decided: Decided, conn) -> Outcome | None:
    """In the claim's transaction: update the conversation if it is as the decision saw
    it; otherwise read it again under its lock and decide again. Then queue the reply."""
    sid, now, seen, decision = (decided.conversation_sid, decided.now, decided.seen,
                                decided.decision)
    changed = None
    body = decided.message.body
    if not state.update_if_unchanged(conn, sid, seen, **_changes(decision, seen, now, body)):
        seen = state.lock_and_read(conn, sid, decided.addresses, now)
        again = decide(decided.message, seen.state, decided.policy, now,
                       enabled=decided.enabled)
        if again != decision:
            decision = changed = again
        state.overwrite(conn, sid, seen, **_changes(decision, seen, now, body))
    if decision.reason is Reason.OPT_IN:
        opt_outs.clear(conn, decided.addresses)
    if decision.reason is Reason.COMPLIANCE_KEYWORD and keywords.opts_out(
            decided.message.body, decided.policy.compliance_keywords):
        # STOP (or the rules file's own compliance words) while earlier messages wait to
        # be answered (AUTO_REPLY_DEBOUNCE, the answer model): nothing may be sent after
        # it; nor may an agent write: the customer waits for one no more.
        pending.drop(conn, sid)
        opt_outs.end_wait(conn, sid)
        # Nor a reply queued before it, waiting for its turn or to be sent again (on
        # WhatsApp or a chat nothing at Twilio would stop it: one went out 57 s after).
        outbox.cancel_queued(conn, sid, decided.addresses, "not sent: the customer sent "
                             f"{decided.message.body.strip()[:20]!r} before it went out")
    handoffs.record(conn, sid, decision, decided.message.body, decided.addresses, now)
    if decision.reason is Reason.DEFERRED:
        message = decided.message
        pending.defer(conn, conversation_sid=sid, message_sid=decided.message_sid,
                      body=message.body, author=message.author,
                      participant_sid=message.participant_sid, channel=message.channel or None,
                      received_at=message.received_at.astimezone(UTC).replace(tzinfo=None),
                      request_id=decided.request_id,
                      delay_seconds=decided.policy.debounce.total_seconds())
    if decision.faq is not None:
        faq_log.record(conn, decided.message_sid, sid, decided.message.body, decision.faq)
    if decision.replies:
        note = outbox.queue_reply(conn, new_reply(decided, decision.reply))
        if note:
            return outcome(decision).with_notes([note])
    return outcome(changed) if changed else None


def new_reply(decided: Decided, reply: Reply) -> outbox.NewReply:
    """The reply to queue: what the decision says, to the message it answers."""
    message = decided.message
    return outbox.NewReply(
        conversation_sid=decided.conversation_sid, in_reply_to=decided.message_sid,
        author=decided.policy.bot_identity, body=reply.body, content_sid=reply.content_sid,
        content_variables=reply.content_variables, media=reply.media,
        customer=message.author, participant_sid=message.participant_sid,
        channel=message.channel or None,
        message_at=message.received_at.astimezone(UTC).replace(tzinfo=None),
        request_id=decided.request_id)


def _changes(decision: Decision, seen: state.Snapshot, now: datetime, body: str) -> dict:
    """The conversation's new values once this decision is recorded."""
    naive = now.astimezone(UTC).replace(tzinfo=None)
    if decision.reason is Reason.AGENT_MESSAGE:
        return {"last_agent_at": naive, "faq_offered": None}  # a number now answers them
    if decision.reason in NOT_CUSTOMERS:
        return {}
    changes = {"last_inbound_at": naive, "inbound_count": seen.inbound_count + 1}
    if decision.reason is not Reason.DEFERRED:  # deferred: the composer's decision says
        changes.update(faq_log.offer_changes(decision, body))
    if decision.replies:
        changes["last_reply_at"] = naive
    return changes


def outcome(decision: Decision) -> Outcome:
    """The decision as the event's outcome: its reason code and rule are stored with it."""
    if decision.replies:
        return Outcome(Kind.REPLY_QUEUED, decision.detail, reason=decision.code,
                       rule=decision.rule)
    if decision.reason is Reason.DEFERRED:
        return Outcome(Kind.DEFERRED, decision.detail, reason=decision.code)
    return Outcome(Kind.IGNORED, str(decision), reason=decision.code, rule=decision.rule)


def inbound(event: Event) -> Inbound:
    """The message as the decision sees it."""
    return Inbound(
        body=event.get("Body", ""), author=event.require("Author"),
        channel=(event.get("Source") or "").upper(), attributes=event.get("Attributes"),
        participant_sid=event.get("ParticipantSid"),
        received_at=formats.parse_time(event.get("DateCreated")) or datetime.now(UTC))


def customer_addresses(message: Inbound) -> list[str]:
    """Who the message is from, for opt-outs: the author's address and the participant."""
    return [a for a in (message.author, message.participant_sid) if a]

