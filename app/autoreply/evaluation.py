"""How often the FAQ answers right: cases decided by the webhook's own code, and counted.

    result = evaluate(text, policy, now, channel="SMS")      # one case, as `decide` sees it
    summary(cases, results) -> dict

Each case goes through `decide` exactly as a customer's first message would (a new
conversation, the bot on), so the [[rules]] still win, compliance keywords stay silent, and
the thresholds are the policy's. A result's outcome is `answer`, `clarify` or `decline`
(the FAQ's), `rule` when a [[rules]] rule answered first, or the reason code the decision
stayed silent for (COMPLIANCE_KEYWORD, ...).
"""

from __future__ import annotations

from datetime import datetime

from ..knowledge import Outcome
from .decision import decide
from .policy import Policy
from .verdict import ConversationState, Decision, Inbound

NEW_CONVERSATION = ConversationState(
    inbound_before=0, last_reply_at=None, replies_last_hour=0, last_agent_at=None,
    opted_out=False)


def evaluate(text: str, policy: Policy, now: datetime, channel: str = "SMS",
             author: str = "+15558675310") -> dict:
    """What the bot does with `text`: outcome, faq_id, candidates, and the decision."""
    message = Inbound(body=text, author=author, channel=channel.upper(), attributes=None,
                      participant_sid=None, received_at=now)
    return describe(text, decide(message, NEW_CONVERSATION, policy, now, composing=True))


def describe(text: str, decision: Decision) -> dict:
    """A decision as an evaluation sees it (`rules try --json` prints the same)."""
    match = decision.faq
    if match is not None and (decision.replies or match.outcome is Outcome.DECLINE):
        outcome = match.outcome.value
    elif decision.replies and match is None and decision.rule not in (
            "greeting", "fallback", "after_hours"):
        outcome = "rule"
    elif decision.replies:
        outcome = Outcome.DECLINE.value  # no knowledge base: what it says is not an answer
    else:
        outcome = decision.code
    answered = outcome == Outcome.ANSWER.value
    return {"text": text, "outcome": outcome,
            "faq_id": match.faq_id if answered else None,
            "candidates": [c.as_dict() for c in match.candidates] if match else [],
            "decision": str(decision), "reply": decision.reply.body if decision.reply else None}


def summary(cases: list[dict], results: list[dict]) -> dict:
    """The shares a team lead asks about (each over the cases it names)."""
    answerable = [(c, r) for c, r in zip(cases, results, strict=True) if c.get("expect")]
    unanswerable = [(c, r) for c, r in zip(cases, results, strict=True) if not c.get("expect")]
    answers = [(c, r) for c, r in zip(cases, results, strict=True) if r["outcome"] == "answer"]
    clarified = [(c, r) for c, r in zip(cases, results, strict=True) if r["outcome"] == "clarify"]
    right = sum(1 for c, r in answerable if r["faq_id"] == c["expect"])
    wrong = sum(1 for c, r in answers if r["faq_id"] != c.get("expect"))
    offered = sum(1 for c, r in clarified if c.get("expect")
                  in {x["faq_id"] for x in r["candidates"]})
    total = len(results)
    kinds = sorted({c["kind"] for c, _ in unanswerable if isinstance(c.get("kind"), str)})
    by_kind = {kind: _share(sum(1 for c, r in unanswerable if c.get("kind") == kind
                                and r["outcome"] != "answer"),
                            sum(1 for c, _ in unanswerable if c.get("kind") == kind))
               for kind in kinds}
    return {
        "summary": True, "cases": total, "answerable": len(answerable),
        "answered_right": _share(right, len(answerable)),
        "wrong_answers": _share(wrong, len(answers)),
        "unanswerable_not_answered": _share(
            sum(1 for _, r in unanswerable if r["outcome"] != "answer"), len(unanswerable)),
        "not_answered_by_kind": by_kind,  # the cases' optional "kind": off-topic, ...
        "answer_rate": _share(len(answers), total),
        "clarify_rate": _share(len(clarified), total),
        "clarify_offered_right": _share(offered, len(clarified)),
        "decline_rate": _share(sum(1 for r in results if r["outcome"] == "decline"), total),
    }


def _share(part: int, whole: int) -> float | None:
    return round(part / whole, 4) if whole else None
