"""Consult the answer model for one burst: caps, the call, the guardrails, the record.

Called by the composer (app/compose/composer.py) outside any transaction, after a first
decision on the burst reached the FAQ's step. Every call is stored (`model_calls`): its
raw output, what the guardrails made of it, how long it took; the caps count those rows,
so they hold across workers, instances and restarts. A call that times out
(ANSWER_MODEL_TIMEOUT), fails in any way, or would pass a cap gives Action.OFFLINE:
the offline matcher's outcome stands.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime, timedelta

import openai
from sqlalchemy import func, insert, select, text, update

from config import AnswerModelSettings

from ..autoreply import ConversationState, Decision, Inbound, Policy, faq
from ..autoreply.assist import Action, Assist
from ..autoreply.decision import placeholder_values
from ..autoreply.templates import SMS_MAX_CHARS
from ..logs import kv
from ..store.database import Database
from ..store.models import ModelCall, utcnow
from . import guardrails
from .client import ModelClient, Shown, messages

log = logging.getLogger(__name__)
CALLS = ModelCall.__table__
SHOWN = 5  # the retrieved entries the model sees
DAY = timedelta(days=1)
# A reply's length, per channel: Twilio refuses an SMS over 1,600 characters (21617) and
# WhatsApp's body is capped as much; other channels get the same, a support answer's size.
LIMITS = {"SMS": SMS_MAX_CHARS, "WHATSAPP": 1_600}
DEFAULT_LIMIT = 1_600
CALLING = "calling"  # a call's verdict until it ends (a crash leaves it: it still counts)
_CAPS_LOCK = 0x5E4E  # pg_advisory_xact_lock key: counting and reserving a call


class Answerer:
    def __init__(self, db: Database, settings: AnswerModelSettings,
                 client: ModelClient | None = None):
        self.db = db
        self.settings = settings
        self.client = client or ModelClient(settings)

    def consult(self, conversation_sid: str, message_sid: str, message: Inbound,
                first: Decision, state: ConversationState, policy: Policy,
                now: datetime) -> Assist | None:
        """The model's verdict on the burst, or None when the FAQ's step was not reached
        (a rule answered, or a silence reason decided) or a number picked an offer."""
        knowledge = policy.rules.knowledge if policy.rules else None
        if (knowledge is None or first.faq is None
                or faq.picks(message.body, state.offered, knowledge)):
            return None
        found = knowledge.retrieve(message.body, message.channel, k=SHOWN)
        if not found:
            return None
        entries = [knowledge.get(c.faq_id) for c in found]
        # The answers as the customer would get them ("Call {{ phone }}" with the number):
        # what the model may copy, and what the guardrails check its numbers against.
        values = placeholder_values(message, message.channel.upper(), policy, now)
        shown = [Shown(e.id, e.questions[0], e.questions[1:], answer_text(e.answer, values))
                 for e in entries]
        reserved, over = self._reserve(conversation_sid, message_sid, now)
        if over:
            log.info("answer model not called %s", kv(reason=over))
            return Assist(Action.OFFLINE, over)
        limit = LIMITS.get(message.channel, DEFAULT_LIMIT)
        request = messages(message.body.splitlines() or [message.body], shown, limit)
        started = time.monotonic()
        raw, assist, detail = None, None, None
        try:
            raw = self.client.complete(request)
        except openai.APITimeoutError:
            detail = f"timed out after {self.settings.timeout:g} s"
        except Exception as exc:  # any error: the offline outcome stands
            detail = f"error: {type(exc).__name__}: {str(exc)[:200]}"
        if raw is not None:
            retrieved = {s.id: "\n".join((s.question, *s.also_asked_as, s.answer))
                         for s in shown}
            try:
                assist = guardrails.check(raw, retrieved, limit)
            except guardrails.Refused as exc:
                assist = Assist(Action.DECLINE, f"refused by the guardrails ({exc})")
                detail = str(exc)
            except Exception as exc:  # noqa: BLE001 - output no guardrail foresaw: refused
                log.warning("the guardrails failed on the model's output", exc_info=True)
                detail = f"the guardrails could not read it: {type(exc).__name__}"
                assist = Assist(Action.DECLINE, f"refused by the guardrails ({detail})")
        if assist is None:
            assist = Assist(Action.OFFLINE, detail)
        elapsed = int((time.monotonic() - started) * 1000)
        verdict = ("rejected" if detail and raw is not None else
                   "error" if assist.action is Action.OFFLINE else assist.action.value)
        self._record(reserved, verdict, detail, assist, raw, elapsed)
        log.info("answer model %s", kv(verdict=verdict, cited=",".join(assist.cited) or None,
                                       ms=elapsed, detail=detail))
        return assist

    def _reserve(self, conversation_sid: str, message_sid: str,
                 now: datetime) -> tuple[int | None, str | None]:
        """Count the calls of the last 24 h and, under both caps, store this one as
        `calling` in the same transaction, before the call: calls in flight count too, in
        every worker and instance (SQLite's writer lock, PostgreSQL's advisory lock
        serialize the count and the insert). (row id, None), or (None, why not)."""
        since = now.astimezone(UTC).replace(tzinfo=None) - DAY
        with self.db.transaction() as conn:
            if conn.dialect.name == "postgresql":
                conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _CAPS_LOCK})
            mine, everyone = conn.execute(select(
                select(func.count()).where(CALLS.c.conversation_sid == conversation_sid,
                                           CALLS.c.called_at >= since).scalar_subquery(),
                select(func.count()).where(CALLS.c.called_at >= since).scalar_subquery(),
            )).one()
            if mine >= self.settings.max_per_conversation:
                return None, (f"{mine} calls in this conversation in 24 h "
                              f"(ANSWER_MODEL_MAX_PER_CONVERSATION)")
            if everyone >= self.settings.max_per_day:
                return None, f"{everyone} calls in 24 h (ANSWER_MODEL_MAX_PER_DAY)"
            row = conn.execute(insert(CALLS).values(
                conversation_sid=conversation_sid, message_sid=message_sid,
                called_at=utcnow(), model=self.settings.model[:128], verdict=CALLING,
            )).inserted_primary_key[0]
        return row, None

    def _record(self, row, verdict, detail, assist, raw, elapsed):
        with self.db.transaction() as conn:
            conn.execute(update(CALLS).where(CALLS.c.id == row).values(
                verdict=verdict, detail=detail, cited=",".join(assist.cited)[:200] or None,
                raw_output=raw, elapsed_ms=elapsed))


def answer_text(spec, values: dict) -> str:
    """An entry's answer as the model sees it: its text as the customer would get it,
    rendered with this message's placeholders (a Content template or media alone, or a
    text that fails to render: nothing to quote)."""
    variant = getattr(spec, "default", None)
    text = getattr(variant, "text", None)
    if text is None:
        return ""
    try:
        return text.render(values)
    except Exception:  # noqa: BLE001 - the webhook's own render reports it
        return ""
