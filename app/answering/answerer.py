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
from sqlalchemy import func, insert, select

from config import AnswerModelSettings

from ..autoreply import ConversationState, Decision, Inbound, Policy, faq
from ..autoreply.assist import Action, Assist
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
        over = self._over_cap(conversation_sid, now)
        if over:
            log.info("answer model not called %s", kv(reason=over))
            return Assist(Action.OFFLINE, over)
        entries = [knowledge.get(c.faq_id) for c in found]
        shown = [Shown(e.id, e.questions[0], e.questions[1:], answer_text(e.answer))
                 for e in entries]
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
        if assist is None:
            assist = Assist(Action.OFFLINE, detail)
        elapsed = int((time.monotonic() - started) * 1000)
        verdict = ("rejected" if detail and raw is not None else
                   "error" if assist.action is Action.OFFLINE else assist.action.value)
        self._record(conversation_sid, message_sid, verdict, detail, assist, raw, elapsed)
        log.info("answer model %s", kv(verdict=verdict, cited=",".join(assist.cited) or None,
                                       ms=elapsed, detail=detail))
        return assist

    def _over_cap(self, conversation_sid: str, now: datetime) -> str | None:
        since = now.astimezone(UTC).replace(tzinfo=None) - DAY
        mine, everyone = self.db.run_read(lambda conn: conn.execute(select(
            select(func.count()).where(CALLS.c.conversation_sid == conversation_sid,
                                       CALLS.c.called_at >= since).scalar_subquery(),
            select(func.count()).where(CALLS.c.called_at >= since).scalar_subquery(),
        )).one())
        if mine >= self.settings.max_per_conversation:
            return (f"{mine} calls in this conversation in 24 h "
                    f"(ANSWER_MODEL_MAX_PER_CONVERSATION)")
        if everyone >= self.settings.max_per_day:
            return f"{everyone} calls in 24 h (ANSWER_MODEL_MAX_PER_DAY)"
        return None

    def _record(self, conversation_sid, message_sid, verdict, detail, assist, raw, elapsed):
        with self.db.transaction() as conn:
            conn.execute(insert(CALLS).values(
                conversation_sid=conversation_sid, message_sid=message_sid,
                called_at=utcnow(), model=self.settings.model[:128], verdict=verdict,
                detail=detail, cited=",".join(assist.cited)[:200] or None, raw_output=raw,
                elapsed_ms=elapsed))


def answer_text(spec) -> str:
    """An entry's answer as the model sees it: its text as written (a Content template
    or media alone: nothing to quote)."""
    variant = getattr(spec, "default", None)
    text = getattr(variant, "text", None)
    return getattr(text, "source", "") if text is not None else ""

