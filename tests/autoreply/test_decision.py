"""decide(): every reason, the order of the checks, the reply chosen and rendered.

The clock is injected: NOW is a Wednesday noon in Berlin (open), NIGHT the same evening.
"""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from app.autoreply import (
    Decision,
    Policy,
    Reason,
    Reply,
    decide,
)
from app.twilio import marker
from tests.support import decisions
from tests.support.decisions import (
    CARD_SID,
    CUSTOMER,
    NOW,
    RULE_TEMPLATE_SID,
    RULES,
    TEMPLATE_SID,
    message,
    state,
)

NIGHT = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)  # Wed 22:00 CEST: closed
RULES_WITHOUT_EXTRAS = """
[hours]
timezone = "Europe/Berlin"
wednesday = "09:00-17:00"

[[rules]]
name = "hours"
keywords = ["hours"]
text = "9 to 5."
"""


def policy(rules: str | None = RULES, **overrides) -> Policy:
    return decisions.policy(rules, **overrides)


DEFAULTS = policy(rules=None)
WITH_RULES = policy()


# One row per reason: (message, state, policy, now, enabled) -> reason and detail.
REASONS = [
    pytest.param(message(), state(), DEFAULTS, NOW, True, Reason.REPLY,
                 "default reply (no rules file)", id="reply"),
    pytest.param(message(author="support-bot"), state(), DEFAULTS, NOW, True,
                 Reason.OWN_MESSAGE, "author support-bot", id="own: bot identity"),
    pytest.param(message(attributes=marker.reply_attributes("IM" + "0" * 32)), state(),
                 DEFAULTS, NOW, True, Reason.OWN_MESSAGE, "autoReply mark in the attributes",
                 id="own: attribute mark"),
    pytest.param(message(author="alice"), state(), DEFAULTS, NOW, True,
                 Reason.AGENT_MESSAGE, "author alice", id="agent: identity"),
    pytest.param(message(author="agent:bob"), state(), WITH_RULES, NOW, True,
                 Reason.AGENT_MESSAGE, "author agent:bob", id="agent: rules pattern"),
    pytest.param(message(author="system"), state(), DEFAULTS, NOW, True,
                 Reason.SYSTEM_MESSAGE, "author system", id="system"),
    pytest.param(message("Stop!"), state(), DEFAULTS, NOW, True,
                 Reason.COMPLIANCE_KEYWORD, "keyword STOP", id="compliance: STOP"),
    pytest.param(message(" help "), state(), DEFAULTS, NOW, True,
                 Reason.COMPLIANCE_KEYWORD, "keyword HELP", id="compliance: HELP"),
    pytest.param(message("START"), state(), DEFAULTS, NOW, True,
                 Reason.COMPLIANCE_KEYWORD, "keyword START", id="compliance: START, not opted out"),
    pytest.param(message("arret."), state(), WITH_RULES, NOW, True,
                 Reason.COMPLIANCE_KEYWORD, "keyword ARRET", id="compliance: rules keyword"),
    pytest.param(message("START"), state(opted_out=True), DEFAULTS, NOW, True,
                 Reason.OPT_IN, "keyword START", id="opt in: START"),
    pytest.param(message("unstop"), state(opted_out=True), DEFAULTS, NOW, True,
                 Reason.OPT_IN, "keyword UNSTOP", id="opt in: UNSTOP"),
    pytest.param(message("Yes!"), state(opted_out=True), DEFAULTS, NOW, True,
                 Reason.OPT_IN, "keyword YES", id="opt in: YES"),
    pytest.param(message("Hello?"), state(opted_out=True), DEFAULTS, NOW, True,
                 Reason.OPTED_OUT, "error 21610; waiting for START, UNSTOP or YES",
                 id="opted out"),
    pytest.param(message(), state(), DEFAULTS, NOW, False, Reason.DISABLED, "switched off",
                 id="disabled"),
    pytest.param(message(), state(last_agent_at=NOW - timedelta(minutes=10)), DEFAULTS, NOW,
                 True, Reason.AGENT_ACTIVE, "silent until 10:20 UTC", id="agent active"),
    pytest.param(message(), state(replies_last_hour=5), DEFAULTS, NOW, True, Reason.BUDGET,
                 "5 of 5 replies in the last hour", id="budget"),
    pytest.param(message(), state(handoff_at=NOW - timedelta(minutes=5)), DEFAULTS, NOW, True,
                 Reason.WAITING_FOR_AGENT, "silent until 10:25 UTC or an agent writes",
                 id="waiting for an agent"),
    pytest.param(message(), state(), policy(rules=None, debounce=timedelta(seconds=10)), NOW,
                 True, Reason.DEFERRED, "after 10 s without a new message", id="deferred"),
    pytest.param(message(), state(last_reply_at=NOW - timedelta(minutes=55)), DEFAULTS, NOW,
                 True, Reason.COOLDOWN, "cooldown until 10:05 UTC", id="cooldown"),
    pytest.param(message(), state(last_reply_at=datetime(2026, 6, 9, 23, 30, tzinfo=UTC)),
                 DEFAULTS, datetime(2026, 6, 9, 23, 50, tzinfo=UTC), True, Reason.COOLDOWN,
                 "cooldown until 2026-06-10 00:30 UTC", id="cooldown: dated across midnight"),
    pytest.param(message(), state(), policy(RULES_WITHOUT_EXTRAS), NIGHT, True,
                 Reason.AFTER_HOURS_SILENT,
                 "closed until Wednesday 17 June at 09:00 CEST", id="after hours silent"),
    pytest.param(message(channel="WHATSAPP", received_at=NOW - timedelta(hours=25)), state(),
                 DEFAULTS, NOW, True, Reason.WHATSAPP_WINDOW, "25.0 h after the message",
                 id="whatsapp window"),
    pytest.param(message(), state(), policy(RULES_WITHOUT_EXTRAS), NOW, True, Reason.NO_RULE,
                 "no rule matched; the rules file has no fallback", id="no rule"),
    pytest.param(message(channel="CHAT"), state(), policy(
                     '[fallback]\ntext = "{% if channel == \'SMS\' %}Hi{% endif %}"'), NOW, True,
                 Reason.TEMPLATE_ERROR, "fallback: ValueError: template", id="template error: empty"),
    pytest.param(message(author="alice2"), state(), policy(
                     '[fallback]\ntext = "{{ 1 // (customer | length - 6) }}"'), NOW, True,
                 Reason.TEMPLATE_ERROR, "fallback: ZeroDivisionError",
                 id="template error: raises"),
    # A defect simulated by a state no caller builds (a time that is text): silence, not
    # an exception that would lose the message (the webhook's test: tests/handlers).
    pytest.param(message(), state(last_reply_at="yesterday"), DEFAULTS, NOW, True,
                 Reason.DECISION_FAILED, "TypeError (a defect: see the log)",
                 id="decision failed"),
]


@pytest.mark.parametrize(("inbound", "conversation", "rules", "now", "enabled", "reason",
                          "detail"), REASONS)
def test_every_reason(inbound, conversation, rules, now, enabled, reason, detail):
    """Each reason is reached, with a detail that explains it."""
    decision = decide(inbound, conversation, rules, now, enabled=enabled)
    assert decision.reason is reason
    assert decision.detail.startswith(detail), decision.detail
    assert decision.replies is (reason is Reason.REPLY)
    assert (decision.reply is not None) is (reason is Reason.REPLY)


def test_every_reason_is_tested():
    """The table above covers the whole enum."""
    assert {row.values[5] for row in REASONS} == set(Reason)


# Several checks would stop the message; the earlier one in the documented order decides.
ORDER = [
    pytest.param(message(author="support-bot", body="STOP"), state(opted_out=True), NOW, False,
                 Reason.OWN_MESSAGE, id="own before compliance, opt-out, switch"),
    pytest.param(message(author="alice", body="STOP"), state(), NOW, True, Reason.AGENT_MESSAGE,
                 id="agent before compliance"),
    pytest.param(message(author="system", body="HELP"), state(), NOW, False, Reason.SYSTEM_MESSAGE,
                 id="system before compliance"),
    pytest.param(message("STOP"), state(opted_out=True), NOW, False, Reason.COMPLIANCE_KEYWORD,
                 id="compliance before opted out and switch"),
    pytest.param(message("YES"), state(opted_out=True), NOW, False, Reason.OPT_IN,
                 id="opt-in recorded while switched off"),
    pytest.param(message(), state(opted_out=True, last_agent_at=NOW), NOW, False, Reason.OPTED_OUT,
                 id="opted out before switch"),
    pytest.param(message(), state(last_agent_at=NOW, replies_last_hour=9), NOW, False,
                 Reason.DISABLED, id="switch before handoff"),
    pytest.param(message(), state(last_agent_at=NOW, replies_last_hour=9), NOW, True,
                 Reason.AGENT_ACTIVE, id="handoff before budget"),
    pytest.param(message("hours?"), state(replies_last_hour=5, last_reply_at=NOW), NOW, True,
                 Reason.BUDGET, id="budget even for a rule that bypasses the cooldown"),
    pytest.param(message(now=NIGHT), state(last_reply_at=NIGHT), NIGHT, True, Reason.COOLDOWN,
                 id="after-hours reply still under cooldown"),
    pytest.param(message(channel="WHATSAPP", received_at=NOW - timedelta(hours=30)),
                 state(last_reply_at=NOW), NOW, True, Reason.COOLDOWN,
                 id="cooldown before the WhatsApp window"),
]


@pytest.mark.parametrize(("inbound", "conversation", "now", "enabled", "reason"), ORDER)
def test_order_of_checks(inbound, conversation, now, enabled, reason):
    """When several checks would stop a message, the earliest one is the reason."""
    assert decide(inbound, conversation, WITH_RULES, now, enabled=enabled).reason is reason


def test_no_rule_and_silent_after_hours_precede_cooldown():
    """A silent choice is reported as such, not as a cooldown."""
    under_cooldown = state(last_reply_at=NOW - timedelta(minutes=1))
    bare = policy(RULES_WITHOUT_EXTRAS)
    assert decide(message(), under_cooldown, bare, NOW).reason is Reason.NO_RULE
    assert decide(message(), under_cooldown, bare, NIGHT).reason is Reason.AFTER_HOURS_SILENT


# Edges of the time-based checks: (state, policy overrides, now) -> replies?
EDGES = [
    pytest.param(state(last_agent_at=NOW - timedelta(minutes=30)), {}, True,
                 id="handoff over at exactly the window"),
    pytest.param(state(last_agent_at=NOW - timedelta(minutes=29, seconds=59)), {}, False,
                 id="handoff one second before"),
    pytest.param(state(last_agent_at=NOW), {"handoff_window": timedelta(0)}, True,
                 id="handoff window 0 turns it off"),
    pytest.param(state(last_reply_at=NOW - timedelta(hours=1)), {}, True,
                 id="cooldown over at exactly the cooldown"),
    pytest.param(state(last_reply_at=NOW - timedelta(minutes=59)), {}, False,
                 id="cooldown a minute before"),
    pytest.param(state(last_reply_at=NOW), {"cooldown": timedelta(0)}, True,
                 id="cooldown 0 turns it off"),
    pytest.param(state(replies_last_hour=4), {}, True, id="budget: one left"),
    pytest.param(state(replies_last_hour=50), {"budget": 0}, True, id="budget 0: no cap"),
    pytest.param(state(replies_last_hour=1), {"budget": 1}, False, id="budget 1"),
]


@pytest.mark.parametrize(("conversation", "overrides", "replies"), EDGES)
def test_time_edges(conversation, overrides, replies):
    """Windows are half-open: at exactly their length, the bot may answer again."""
    assert decide(message(), conversation, policy(None, **overrides), NOW).replies is replies


# Choosing the reply with the rules file: (message, state, now) -> rule and reply.
CHOICES = [
    pytest.param(message("What are your opening hours?"), state(), NOW, "hours",
                 Reply("We're open 9 to 5."), id="keyword rule"),
    pytest.param(message("HOURS"), state(), NOW, "hours", Reply("We're open 9 to 5."),
                 id="case-insensitive by default"),
    pytest.param(message("hoursless"), state(), NOW, "fallback", Reply("Thanks from Acme."),
                 id="keywords are whole words"),
    pytest.param(message("hours?", now=NIGHT), state(), NIGHT, "hours",
                 Reply("We're open 9 to 5."), id="an explicit rule answers after hours"),
    pytest.param(message("Where is my refund"), state(), NOW, "refund",
                 Reply("Refunds take 5 days."), id="regex rule"),
    pytest.param(message("Where is my refund", channel="WHATSAPP"), state(), NOW, "fallback",
                 Reply("Thanks on WHATSAPP."), id="rule limited to other channels"),
    pytest.param(message("hours and a refund"), state(), NOW, "hours",
                 Reply("We're open 9 to 5."), id="first match wins"),
    pytest.param(message("I am a VIP"), state(), NOW, "vip", Reply("Hello VIP."),
                 id="case-sensitive rule"),
    pytest.param(message("I am a vip"), state(), NOW, "fallback", Reply("Thanks from Acme."),
                 id="case-sensitive rule, other case"),
    pytest.param(message("urgent!"), state(), NOW, "fallback", Reply("Thanks from Acme."),
                 id="closed-only rule while open"),
    pytest.param(message("urgent!", now=NIGHT), state(), NIGHT, "urgent",
                 Reply("Call us at night."), id="closed-only rule after hours"),
    pytest.param(message(), state(inbound_before=0), NOW, "greeting",
                 Reply(f"Welcome to Acme, {CUSTOMER}!"), id="greeting for the first message"),
    pytest.param(message(now=NIGHT), state(inbound_before=0), NIGHT, "after_hours",
                 Reply("Closed; back Thursday 11 June at 09:00 CEST."),
                 id="after hours replaces the greeting"),
    pytest.param(message(now=NIGHT), state(), NIGHT, "after_hours",
                 Reply("Closed; back Thursday 11 June at 09:00 CEST."),
                 id="after hours replaces the fallback"),
    pytest.param(message(now=datetime(2026, 12, 24, 10, tzinfo=UTC)), state(),
                 datetime(2026, 12, 24, 10, tzinfo=UTC), "after_hours",
                 Reply("Closed; back Friday 25 December at 09:00 CET."),
                 id="holiday"),
    pytest.param(message(now=datetime(2026, 6, 13, 10, tzinfo=UTC)), state(),
                 datetime(2026, 6, 13, 10, tzinfo=UTC), "after_hours",
                 Reply("Closed; back Monday 15 June at 09:00 CEST."), id="weekend"),
    pytest.param(message(), state(), NOW, "fallback", Reply("Thanks from Acme."),
                 id="fallback"),
    pytest.param(message(channel="WHATSAPP"), state(), NOW, "fallback",
                 Reply("Thanks on WHATSAPP."), id="fallback per channel"),
    pytest.param(message(channel="whatsapp"), state(), NOW, "fallback",
                 Reply("Thanks on WHATSAPP."), id="channel case ignored"),
    pytest.param(message("our catalogue"), state(), NOW, "card",
                 Reply(None, CARD_SID, json.dumps({"1": CUSTOMER, "2": "Acme"})),
                 id="content template"),
    pytest.param(message("hours?", channel="WHATSAPP", received_at=NOW - timedelta(hours=25)),
                 state(), NOW, "hours", Reply(None, RULE_TEMPLATE_SID),
                 id="whatsapp window: the rule's template"),
    pytest.param(message(channel="WHATSAPP", received_at=NOW - timedelta(hours=25)),
                 state(), NOW, "fallback",
                 Reply(None, TEMPLATE_SID, json.dumps({"1": CUSTOMER})),
                 id="whatsapp window: the file's template"),
    pytest.param(message(channel="WHATSAPP", received_at=NOW - timedelta(hours=24)),
                 state(), NOW, "fallback", Reply("Thanks on WHATSAPP."),
                 id="whatsapp window: 24 h exactly is still inside"),
    pytest.param(message(channel="SMS", received_at=NOW - timedelta(days=3)),
                 state(), NOW, "fallback", Reply("Thanks from Acme."),
                 id="no window on SMS"),
]


@pytest.mark.parametrize(("inbound", "conversation", "now", "rule", "reply"), CHOICES)
def test_choice(inbound, conversation, now, rule, reply):
    """Rules first, then after hours, greeting, fallback; per channel; WhatsApp templates."""
    decision = decide(inbound, conversation, WITH_RULES, now)
    assert (decision.reason, decision.rule, decision.reply) == (Reason.REPLY, rule, reply)


@pytest.mark.parametrize(("body", "reason"), [
    ("hours?", Reason.REPLY),  # bypass_cooldown = true
    ("refund", Reason.COOLDOWN),
    ("hello", Reason.COOLDOWN),
])
def test_bypass_cooldown(body, reason):
    """A rule with bypass_cooldown answers right after another reply; others wait."""
    just_replied = state(last_reply_at=NOW - timedelta(minutes=1))
    assert decide(message(body), just_replied, WITH_RULES, NOW).reason is reason


def test_defaults_without_rules_file():
    """Without a rules file every customer message gets AUTO_REPLY_TEXT, literally."""
    literal = policy(None, auto_reply_text="Thanks {{ customer }}!")
    decision = decide(message(channel="WHATSAPP"), state(inbound_before=0), literal, NIGHT)
    assert decision == Decision(Reason.REPLY, "default reply (no rules file)", "fallback",
                                Reply("Thanks {{ customer }}!"))


def test_placeholders():
    """Templates see customer, channel, next_open, next_open_at and the constants."""
    rules = """
[constants]
company = "Acme"
open_days = 5
[hours]
timezone = "America/New_York"
friday = "09:00-17:00"
next_open_format = "%a %H:%M %Z"
[after_hours]
text = "{{ company }}/{{ customer }}/{{ channel }}/{{ next_open }}/{{ next_open_at.strftime('%d') }}/{{ open_days * 2 }}"
"""
    decision = decide(message(channel="chat", author="jane"), state(), policy(rules), NOW)
    assert decision.reply == Reply("Acme/jane/CHAT/Fri 09:00 EDT/12/10")


def test_next_open_without_hours_is_now():
    """Without business hours the team counts as in: next_open is the current time."""
    rules = '[fallback]\ntext = "Back {{ next_open }}"'
    assert decide(message(), state(), policy(rules), NOW).reply == Reply(
        "Back Wednesday 10 June at 10:00 UTC")


def test_same_inputs_same_decision():
    """decide is pure: the same values give the same decision, and nothing is mutated."""
    inbound, conversation = message("hours?"), state()
    first = decide(inbound, conversation, WITH_RULES, NOW)
    assert decide(replace(inbound), replace(conversation), WITH_RULES, NOW) == first


def test_naive_datetimes_refused():
    """A naive clock is a programming error, not a guess about the zone."""
    with pytest.raises(ValueError, match="aware"):
        decide(message(), state(), DEFAULTS, NOW.replace(tzinfo=None))


def test_decision_renders():
    """A decision reads as 'reason: detail', with the reason's name as the stored code."""
    decision = decide(message("STOP"), state(), DEFAULTS, NOW)
    assert str(decision) == "compliance keyword, answered by Twilio and the carriers: keyword STOP"
    assert decision.code == "COMPLIANCE_KEYWORD"
