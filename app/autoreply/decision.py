"""Decide what to say to a customer's message, or why to stay silent: one pure function.

    decide(message, state, policy, now, *, enabled=True) -> Decision

No Flask, no database, no clock: the caller loads the conversation's state, reads the
clock and the runtime switch, calls this, and records the decision (and the reply) in
its own transaction. The same inputs always give the same decision, so `rules try` and
catch-up see exactly what a webhook would have done.

The order of the checks, first to last; the first that says "silent" decides:

 1. Loop guard: our own message (author is the bot, or our `autoReply` attribute mark)
    -> OWN_MESSAGE; an agent's (AGENT_IDENTITIES or the rules' agent_patterns)
    -> AGENT_MESSAGE (the caller records it: it opens the handoff window); the REST
    API's 'system' -> SYSTEM_MESSAGE. Nothing else matters for a message that is not a
    customer's, not even the switch.
 2. Compliance keyword: a message that *is* START/UNSTOP/YES from an opted-out customer
    -> OPT_IN (the caller clears the opt-out; Twilio answers the keyword itself); any
    other message that is STOP, HELP, ... or a rules-file keyword -> COMPLIANCE_KEYWORD.
    Before the switch, so the decision records them even while the bot is off.
 3. Opted out (Twilio error 21610, no opt-in since) -> OPTED_OUT.
 4. Switched off (`enabled`) -> DISABLED.
 5. Handoff: an agent wrote less than handoff_window ago -> AGENT_ACTIVE; the bot handed
    the conversation off (said its handoff message) less than handoff_window ago, or
    with handoff_window 0 at all, and no agent has written since -> WAITING_FOR_AGENT.
 6. Budget: replies_last_hour >= budget -> BUDGET, whatever any rule says (a circuit
    breaker against a loop with another bot, so nothing may bypass it).
 6b. Composed later: the policy waits for the conversation to be quiet
    (AUTO_REPLY_DEBOUNCE) or asks the answer model, and this is the message's arrival
    (not `composing`) -> DEFERRED. The composer (app/compose/) calls this same function
    again once due, with `composing=True`, the burst's text as one message and the
    state read under the conversation's lock: steps 1-6 are checked again then (an
    agent may have written meanwhile), and the reply is chosen from step 7 on.
 7. Choose the reply, first that applies:
    0. Handoff on request: the message asks for a person (HANDOFF_PHRASES) -> the
       handoff message, whatever the cooldown.
    a. [[rules]] in file order, first match wins (keywords as whole words, or a regular
       expression; case-insensitive unless the rule says otherwise; optionally only on
       some channels, or only while open / only after hours). An explicit rule answers a
       specific question, so it answers after hours too. Rules see the message's first
       4,096 characters, and a pattern's search is bounded in time (patterns.py).
    a'. The FAQ ([[faq]], `knowledge`; app/knowledge): a message that picks an entry the
       last clarification offered ("2", "two", autoreply/faq.py) gets it; otherwise
       the knowledge base answers (one entry clearly best), clarifies ("Did you mean:
       1) ... 2) ...? Reply with a number.") or declines, and a declined question goes
       on to b-d as before. Like a rule, an answer is to a specific question: after hours
       too. The match (outcome, entry, candidates with scores) stays in the decision.
    b. After hours (outside business hours, or a holiday): the [after_hours] reply, which
       replaces both the greeting and the fallback (telling a first-time customer
       "welcome, we'll answer soon" at 23:00 promises what nobody keeps); without one
       -> AFTER_HOURS_SILENT.
    c. [greeting] for the conversation's first inbound message.
    d. [fallback]; without a rules file, AUTO_REPLY_TEXT; a rules file without a fallback
       -> NO_RULE. With HANDOFF_ON_DECLINE, the handoff message replaces c and d.
    The chosen reply's variant for the message's channel is used when there is one.
 8. Cooldown: a reply went out less than `cooldown` ago -> COOLDOWN, unless the chosen
    rule has bypass_cooldown (an answer to "opening hours?" is worth sending right after
    the greeting), or the reply is the FAQ's (an answer or a clarification). After
    choosing, because only the rule knows whether it bypasses.
 9. WhatsApp's 24-hour window: on WHATSAPP, more than 24 h after the customer's message
    (catch-up after an outage, long retries) free text fails with 63016, so the reply goes
    out as the rule's (else the file's) approved Content template, or not at all
    -> WHATSAPP_WINDOW.
10. Render the templates -> REPLY (a template failing at run time despite the load-time
    check, going past its bounds in work or size (sandbox.py), or over 1,600 characters
    on SMS -> TEMPLATE_ERROR, silent and logged, rather than an exception in the webhook
    or a reply Twilio refuses).
Any other exception on the way (a defect) -> DECISION_FAILED, silent and logged.

Business hours, handoff and cooldown are judged at `now` (when the reply would go out);
only the WhatsApp window is measured from the message's `received_at`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from ..knowledge import Match
from ..twilio import marker
from . import faq, handoff, keywords
from .assist import Assist, apply
from .names import AFTER_HOURS, FALLBACK, GREETING, SMS, SMS_MAX_CHARS
from .policy import Policy
from .verdict import ConversationState, Decision, Inbound, Reason, Reply

if TYPE_CHECKING:  # the rules file's modules load only with a rules file (names.py)
    from .templates import ReplySpec, Variant

log = logging.getLogger(__name__)

SYSTEM_AUTHOR = "system"  # the author of REST-created messages that name none
WHATSAPP = "WHATSAPP"
WHATSAPP_WINDOW = timedelta(hours=24)  # free-form replies only within 24 h (error 63016)


@dataclass(frozen=True)
class _Choice:
    """The reply step 7 picked, before cooldown, window and rendering."""

    rule: str
    detail: str
    spec: ReplySpec | None  # None: a literal text (AUTO_REPLY_TEXT unless `literal`)
    bypass_cooldown: bool = False
    faq: Match | None = None
    literal: str | None = None  # a clarification, or the handoff message


def decide(message: Inbound, state: ConversationState, policy: Policy, now: datetime, *,
           enabled: bool = True, composing: bool = False,
           assist: Assist | None = None) -> Decision:
    """Reply or stay silent, and say why (the module docstring has the order).
    `composing`: the composer decides a deferred message (or burst) now; `assist`: the
    answer model's verdict, used in the FAQ's step (autoreply/assist.py).

    A defect that raises anywhere in it (a message no test foresaw) is DECISION_FAILED:
    silent and logged with its traceback, and the message recorded with it, instead of a
    500 that loses the message (Twilio never sends a webhook again)."""
    if now.tzinfo is None or message.received_at.tzinfo is None:
        raise ValueError("decide needs aware datetimes (now, received_at)")
    try:
        return _decide(message, state, policy, now, enabled, composing, assist)
    except Exception as exc:  # noqa: BLE001 - any defect: silence, recorded and logged
        log.exception("the decision failed; the message gets no automated reply")
        return Decision(Reason.DECISION_FAILED, f"{type(exc).__name__} (a defect: see the log)")


def _decide(message: Inbound, state: ConversationState, policy: Policy, now: datetime,
            enabled: bool, composing: bool, assist: Assist | None) -> Decision:
    channel = message.channel.upper()

    guard = loop_guard(message, policy)
    if guard:
        return guard

    word = keywords.keyword_in(message.body, keywords.OPT_BACK_IN)
    if state.opted_out and word:
        return Decision(Reason.OPT_IN, f"keyword {word}")
    word = keywords.keyword_in(message.body, policy.compliance_keywords)
    if word:
        return Decision(Reason.COMPLIANCE_KEYWORD, f"keyword {word}")
    if state.opted_out:
        return Decision(Reason.OPTED_OUT, "error 21610; waiting for START, UNSTOP or YES")

    if not enabled:
        return Decision(Reason.DISABLED, "switched off")
    if (policy.handoff_window and state.last_agent_at is not None
            and now - state.last_agent_at < policy.handoff_window):
        until = state.last_agent_at + policy.handoff_window
        return Decision(Reason.AGENT_ACTIVE, f"silent until {_at(until, now)}")
    if state.handoff_at is not None and (
            not policy.handoff_window or now - state.handoff_at < policy.handoff_window):
        until = ("until an agent writes" if not policy.handoff_window else
                 f"silent until {_at(state.handoff_at + policy.handoff_window, now)} "
                 f"or an agent writes")
        return Decision(Reason.WAITING_FOR_AGENT, until)
    if policy.budget and state.replies_last_hour >= policy.budget:
        return Decision(Reason.BUDGET, f"{state.replies_last_hour} of {policy.budget} "
                                       f"replies in the last hour")
    if policy.composes_later and not composing:
        return Decision(Reason.DEFERRED, policy.deferral)

    chosen = _choose(message.body, channel, state, policy, now, assist, composing)
    if isinstance(chosen, Decision):
        return chosen
    match = chosen.faq

    if (policy.cooldown and not chosen.bypass_cooldown and state.last_reply_at is not None
            and now - state.last_reply_at < policy.cooldown):
        until = state.last_reply_at + policy.cooldown
        return Decision(Reason.COOLDOWN, f"cooldown until {_at(until, now)}", chosen.rule,
                        faq=match)

    variant, detail = _variant(chosen, channel)
    if channel == WHATSAPP and now - message.received_at > WHATSAPP_WINDOW:
        template = _whatsapp_template(chosen, policy)
        if template is None:
            waited = _hours(now - message.received_at)
            return Decision(Reason.WHATSAPP_WINDOW, f"{waited} after the message", chosen.rule,
                            faq=match)
        variant, detail = template, f"{detail}, as the approved template (past 24 h)"

    if variant is None:  # AUTO_REPLY_TEXT (no rules file), a clarification or the
        # handoff message, literally
        return Decision(Reason.REPLY, detail, chosen.rule,
                        Reply(chosen.literal or policy.auto_reply_text), faq=match,
                        hands_off=chosen.rule == handoff.RULE)
    try:
        body, content_sid, content_variables = variant.render(
            placeholder_values(message, channel, policy, now))
    except Exception as exc:  # never let a template crash the webhook
        return _template_error(f"{detail}: {type(exc).__name__}: {exc}", chosen.rule, match)
    if channel == SMS and body is not None and len(body) > SMS_MAX_CHARS:
        return _template_error(f"{detail}: renders {len(body):,} characters; SMS takes at "
                               f"most {SMS_MAX_CHARS:,} (Twilio error 21617)", chosen.rule,
                               match)
    return Decision(Reason.REPLY, detail, chosen.rule, Reply(
        body, content_sid, content_variables, media=getattr(variant, "media", None)), faq=match)


def _template_error(detail: str, rule: str, match: Match | None = None) -> Decision:
    """A reply's template failed at run time (past a bound, or raising): no reply, and a
    warning, since the load-time check with sample values did not catch it."""
    log.warning("reply template failed, no reply sent: %s", detail)
    return Decision(Reason.TEMPLATE_ERROR, detail, rule, faq=match)


def loop_guard(message: Inbound, policy: Policy) -> Decision | None:
    """Step 1: why a message is not a customer's to answer (None: it is one)."""
    if message.author == policy.bot_identity:
        return Decision(Reason.OWN_MESSAGE, f"author {message.author}")
    if marker.is_auto_reply(message.attributes):
        return Decision(Reason.OWN_MESSAGE, f"{marker.AUTO_REPLY} mark in the attributes")
    if policy.is_agent(message.author):
        return Decision(Reason.AGENT_MESSAGE, f"author {message.author}")
    if message.author == SYSTEM_AUTHOR:
        return Decision(Reason.SYSTEM_MESSAGE, "author system")
    return None


def _choose(body: str, channel: str, state: ConversationState, policy: Policy,
            now: datetime, assist: Assist | None = None,
            composing: bool = False) -> _Choice | Decision:
    """Step 7: which reply, or why none (after hours without a reply, no rule)."""
    asked = policy.handoff.asked(body) if policy.handoff else None
    if asked:
        return _handing_off(policy, f"handoff (asked for {asked!r})")
    rules = policy.rules
    if rules is None:
        if _hands_off_on_decline(policy):
            return _handing_off(policy, "handoff (no rules file, nothing to answer with)")
        return _Choice(FALLBACK, "default reply (no rules file)", None)
    hours = rules.hours
    is_open = hours is None or hours.is_open(now)
    rule = rules.match(body, channel, is_open)
    if rule is not None:
        return _Choice(rule.name, f"rule {rule.name!r}", rule.reply, rule.bypass_cooldown)
    declined = None
    if rules.knowledge is not None:
        # A burst (composed after the wait) that declines whole may be answered by one of
        # its messages; not when a decline hands off: what nothing answers needs a person.
        found = faq.choose(body, channel, state.offered, rules.knowledge, policy.faq_thresholds,
                           by_message=composing and not _hands_off_on_decline(policy))
        if assist is not None and not faq.picks(body, state.offered, rules.knowledge):
            found = apply(assist, found, rules.knowledge)
        if found.replies:
            return _Choice(found.rule, found.detail, found.spec, bypass_cooldown=True,
                           faq=found.match, literal=found.text)
        declined = found.match
    if not is_open:
        back = hours.format(hours.next_open(now))
        if rules.after_hours is None:
            return Decision(Reason.AFTER_HOURS_SILENT, f"closed until {back}", faq=declined)
        return _Choice(AFTER_HOURS, f"after hours (back {back})", rules.after_hours,
                       faq=declined)
    if _hands_off_on_decline(policy):
        return _handing_off(policy, "handoff (no rule or answer matched)", declined)
    if state.inbound_before == 0 and rules.greeting is not None:
        return _Choice(GREETING, "greeting (first message)", rules.greeting, faq=declined)
    if rules.fallback is not None:
        return _Choice(FALLBACK, "fallback", rules.fallback, faq=declined)
    return Decision(Reason.NO_RULE, "no rule matched; the rules file has no fallback",
                    faq=declined)


def _hands_off_on_decline(policy: Policy) -> bool:
    """HANDOFF_ON_DECLINE, or the rules file's `on_decline = "handoff"` (read from the
    rules in force, so a reload that changes it counts)."""
    return policy.handoff is not None and (
        policy.handoff.on_decline
        or (policy.rules is not None and policy.rules.on_decline == "handoff"))


def _handing_off(policy: Policy, detail: str, declined: Match | None = None) -> _Choice:
    """The handoff message: said once, whatever the cooldown (the customer asked for a
    person, or the bot has nothing to say); the silence that follows is step 5's."""
    return _Choice(handoff.RULE, detail, None, bypass_cooldown=True, faq=declined,
                   literal=policy.handoff.message)


def _variant(chosen: _Choice, channel: str) -> tuple[Variant | None, str]:
    if chosen.spec is None:
        return None, chosen.detail
    if channel in chosen.spec.per_channel:
        return chosen.spec.per_channel[channel], f"{chosen.detail}, {channel} variant"
    return chosen.spec.default, chosen.detail


def _whatsapp_template(chosen: _Choice, policy: Policy) -> Variant | None:
    if chosen.spec is not None and chosen.spec.whatsapp_template is not None:
        return chosen.spec.whatsapp_template
    return policy.rules.whatsapp_template if policy.rules else None


def placeholder_values(message: Inbound, channel: str, policy: Policy, now: datetime) -> dict:
    """The placeholders' values (templates.PLACEHOLDERS); constants are template globals.
    Also what the answer model is shown an entry's answer rendered with."""
    hours = policy.rules.hours if policy.rules else None
    if hours is None:
        next_open_at = now
        next_open = f"{now.astimezone(UTC):%A %d %B at %H:%M} UTC"
    else:
        next_open_at = hours.next_open(now)
        next_open = hours.format(next_open_at)
    return {"customer": message.author, "channel": channel,
            "next_open": next_open, "next_open_at": next_open_at}


def _at(moment: datetime, now: datetime) -> str:
    """A moment in UTC: the time alone when it is today's, else the date too."""
    utc, today = moment.astimezone(UTC), now.astimezone(UTC)
    return f"{utc:%H:%M} UTC" if utc.date() == today.date() else f"{utc:%Y-%m-%d %H:%M} UTC"


def _hours(span: timedelta) -> str:
    return f"{span.total_seconds() / 3600:.1f} h"

