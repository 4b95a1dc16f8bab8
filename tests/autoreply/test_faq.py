"""The FAQ in the rules file (checked at load) and in decide(): where it sits, its three
outcomes, the clarification's numbers, the cooldown it bypasses and the budget it does not.

The clock is injected: NOW is a Wednesday noon in Berlin (open), NIGHT the same evening.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.autoreply import (
    ConversationState,
    Inbound,
    Policy,
    Reason,
    RulesError,
    decide,
    load_rules,
    parse_rules,
)
from app.autoreply.faq import picked_number
from app.autoreply.names import SMS_MAX_CHARS
from app.knowledge import Outcome, Thresholds
from tests.support.decisions import CARD_LOST_OR_STOLEN

NOW = datetime(2026, 6, 10, 10, 0, tzinfo=UTC)  # Wed 12:00 CEST: open
NIGHT = datetime(2026, 6, 10, 20, 0, tzinfo=UTC)  # Wed 22:00 CEST: closed

RULES = """
[hours]
timezone = "Europe/Berlin"
wednesday = "09:00-17:00"

[greeting]
text = "Welcome!"

[after_hours]
text = "Closed."

[fallback]
text = "We'll get back to you soon."

[[rules]]
name = "refund-rule"
keywords = ["refund"]
text = "A rule about refunds."

[[faq]]
id = "card-delivery"
questions = ["When will my card arrive?", "My card hasn't arrived yet",
             "How long does it take to get my card?"]
answer = "Cards arrive within 7 working days, {{ customer }}."

[[faq]]
id = "payment-methods"
questions = ["Which payment methods do you accept?", "Can I pay with Google Pay or Apple Pay?"]
[faq.answer]
text = "Visa, Mastercard, PayPal, Google Pay and Apple Pay."
[faq.answer.per_channel.WHATSAPP]
text = "Cards, PayPal, Google Pay, Apple Pay 💳"
""" + CARD_LOST_OR_STOLEN

FRESH = ConversationState(inbound_before=3, last_reply_at=None, replies_last_hour=0,
                          last_agent_at=None, opted_out=False)


def policy(**changes) -> Policy:
    built = Policy.build(
        bot_identity="support-bot", agent_identities=["alice@support"], auto_reply_text="Hi",
        cooldown=timedelta(hours=1), budget=3, handoff_window=timedelta(minutes=30),
        rules=parse_rules(RULES, "rules.toml"),
        faq_thresholds=Thresholds())
    return replace(built, **changes)


def message(body: str, channel: str = "SMS", at: datetime = NOW) -> Inbound:
    return Inbound(body=body, author="+15558675310", channel=channel, attributes=None,
                   participant_sid=None, received_at=at)


def test_a_question_in_the_faq_gets_its_answer_rendered_for_the_channel():
    """The issue's example: the answer, not the fallback; the match stays in the decision."""
    decision = decide(message("my card still hasn't arrived, it's been two weeks"), FRESH,
                      policy(), NOW)
    assert decision.reason is Reason.REPLY and decision.rule == "faq:card-delivery"
    assert decision.reply.body == "Cards arrive within 7 working days, +15558675310."
    assert decision.faq.outcome is Outcome.ANSWER
    assert decision.faq.candidates[0].faq_id == "card-delivery"
    whatsapp = decide(message("can I pay with google pay?", "WHATSAPP"), FRESH, policy(), NOW)
    assert whatsapp.reply.body == "Cards, PayPal, Google Pay, Apple Pay 💳"


def test_an_explicit_rule_still_wins():
    decision = decide(message("when will my card arrive, and my refund?"), FRESH, policy(), NOW)
    assert decision.rule == "refund-rule" and decision.faq is None


def test_a_declined_question_gets_the_fallback_greeting_or_after_hours_as_before():
    """Nothing good enough: what the bot said before there was an FAQ, the match recorded."""
    off_topic = message("what's the weather like tomorrow")
    decision = decide(off_topic, FRESH, policy(), NOW)
    assert decision.rule == "fallback" and decision.faq.outcome is Outcome.DECLINE
    first = decide(off_topic, replace(FRESH, inbound_before=0), policy(), NOW)
    assert first.rule == "greeting" and first.faq.outcome is Outcome.DECLINE
    night = decide(message("what's the weather like tomorrow", at=NIGHT), FRESH, policy(), NIGHT)
    assert night.rule == "after_hours" and night.faq.outcome is Outcome.DECLINE


def test_faq_answers_after_hours_too():
    decision = decide(message("when will my card arrive?", at=NIGHT), FRESH, policy(), NIGHT)
    assert decision.rule == "faq:card-delivery"


def test_close_entries_are_offered_by_number_and_the_number_gets_the_answer():
    """Clarify: "Did you mean: 1) ... 2) ...?"; the next message "2" answers with the
    second entry (the conversation keeps the offered ids)."""
    asked = decide(message("i lost my card or it was stolen"), FRESH, policy(), NOW)
    assert asked.faq.outcome is Outcome.CLARIFY and asked.rule == "faq:clarify"
    offered = tuple(c.faq_id for c in asked.faq.candidates)
    assert set(offered) == {"card-lost", "card-stolen"}
    titles = {"card-lost": "I lost my card", "card-stolen": "My card was stolen"}
    assert asked.reply.body == (f"Did you mean: 1) {titles[offered[0]]} "
                                f"2) {titles[offered[1]]}? Reply with a number.")
    after = replace(FRESH, offered=offered, last_reply_at=NOW - timedelta(minutes=1),
                    replies_last_hour=1)
    for text in ("2", " 2) ", "2.", "#2", "(2)", "2!", "２", "2\ufe0f\u20e3", "\u24f6", "\u136a",
                 "\u00b2", "two", "Two",
                 "the second one", "2nd", "option 2 please", "02", "2\n2.", "ok\n2",
                 "2 thanks", "2, thank you", "ok 2", "yes 2", "2\nthanks!",
                 "my card hasn't come\n2\nthanks"):
        picked = decide(message(text), after, policy(), NOW)
        assert picked.reason is Reason.REPLY, text  # not held back by the cooldown
        assert picked.rule == f"faq:{offered[1]}"
        assert picked.faq.outcome is Outcome.ANSWER and picked.faq.faq_id == offered[1]
    for text in ("3", "0", "option 5"):  # not offered: the same question again
        again = decide(message(text), after, policy(), NOW)
        assert again.rule == "faq:clarify" and again.reply.body == asked.reply.body, text
        assert tuple(c.faq_id for c in again.faq.candidates) == offered
    assert decide(message("12345"), after, policy(), NOW).rule == "fallback"  # an order no.
    for text in ("I ordered 2 weeks ago", "2 or 1", "no", "twenty", "no one", "the one",
                 "return shipping \u1369", "card shipping cost \u24f6", "\u1369\u136a",
                 "i want one", "-2", "thanks", "ok\nthanks",
                 "2\nand how do i block it?"):  # not a pick
        assert decide(message(text), after, policy(), NOW).rule != f"faq:{offered[1]}", text
    assert decide(message("2"), FRESH, policy(), NOW).rule == "fallback"  # nothing offered


def test_a_clarification_fits_an_sms_whatever_the_titles():
    """Entries whose first question is very long still make a clarification Twilio
    accepts (an SMS of at most 1,600 characters), each title cut with an ellipsis."""
    from app.autoreply.faq import clarification

    text = clarification(["Where is my card " + "really " * 200, "Short one?", "x" * 900])
    assert len(text) <= SMS_MAX_CHARS
    assert text.startswith("Did you mean: 1) Where is my card really") and "\u2026 2) Short one " in text


def test_faq_answers_bypass_the_cooldown_but_not_the_budget():
    """An answer is useful right after another reply; the hourly budget still holds."""
    just_replied = replace(FRESH, last_reply_at=NOW - timedelta(minutes=1), replies_last_hour=1)
    assert decide(message("when will my card arrive"), just_replied, policy(), NOW).replies
    fallback = decide(message("what's the weather"), just_replied, policy(), NOW)
    assert fallback.reason is Reason.COOLDOWN and fallback.faq.outcome is Outcome.DECLINE
    spent = replace(FRESH, replies_last_hour=3)
    assert decide(message("when will my card arrive"), spent, policy(), NOW).reason \
        is Reason.BUDGET


@pytest.mark.parametrize("body, reason", [("STOP", Reason.COMPLIANCE_KEYWORD),
                                          ("HELP", Reason.COMPLIANCE_KEYWORD)])
def test_compliance_keywords_and_the_switch_come_first(body, reason):
    assert decide(message(body), FRESH, policy(), NOW).reason is reason
    off = decide(message("when will my card arrive"), FRESH, policy(), NOW, enabled=False)
    assert off.reason is Reason.DISABLED and off.faq is None


@pytest.mark.parametrize("faq, problem", [
    ('[[faq]]\nid = "a"\nquestions = ["Q?"]\nanswer = "x"\n'
     '[[faq]]\nid = "a"\nquestions = ["R?"]\nanswer = "y"\n', "two entries have the id 'a'"),
    ('[[faq]]\nid = "a"\nquestions = []\nanswer = "x"\n', "faq[0] 'a' .questions"),
    ('[[faq]]\nid = "a"\nquestions = ["Q?"]\nanswer = "{{ custmer }}"\n',
     "faq[0] 'a' .answer.text: unknown placeholder custmer"),
    ('[[faq]]\nid = "a b"\nquestions = ["Q?"]\nanswer = "x"\n', "faq[0] 'a b' .id"),
    ('[[faq]]\nid = "a"\nquestions = ["Q?"]\nanswr = "x"\n', "faq[0] 'a' .answr: unknown field"),
    ('knowledge = "missing.csv"\n', "knowledge: "),
    ('on_decline = "shrug"\n', "on_decline"),
    ('[[faq]]\nid = "a"\nquestions = ["How much is shipping?"]\nanswer = "x"\n'
     '[[faq]]\nid = "b"\nquestions = ["how much is  shipping"]\nanswer = "y"\n',
     "entries 'a' and 'b' both have the question 'how much is  shipping'"),
    ('[[faq]]\nid = "a"\nquestions = ["Q?"]\nanswer = "x"\nchannels = []\n',
     "faq[0] 'a' .channels"),
    ('[[rules]]\nname = "r"\npattern = ""\ntext = "t"\n',
     "an empty pattern matches every message"),
])
def test_a_broken_entry_stops_the_load_naming_entry_and_field(faq, problem):
    """Also what would load but never work: a question in two entries (the bot could
    only ask "did you mean 1) X 2) X?"), channels = [] (answers nowhere), an empty
    pattern (matches every message)."""
    with pytest.raises(RulesError) as caught:
        parse_rules(faq, "rules.toml")
    assert problem in str(caught.value)


def test_knowledge_file_entries_join_the_faq(tmp_path):
    """`knowledge = "faq.csv"`, relative to the rules file: its entries answer too, and a
    bad answer in it names the file and the entry."""
    (tmp_path / "faq.csv").write_text(
        "id,question,answer\nreturns,How do I return an item?,Free within 30 days.\n")
    path = tmp_path / "rules.toml"
    path.write_text('knowledge = "faq.csv"\n[[faq]]\nid = "x"\nquestions = ["Q?"]\nanswer = "A"\n')
    rules = load_rules(path)
    assert [e.id for e in rules.knowledge.entries] == ["x", "returns"]
    (tmp_path / "faq.csv").write_text(
        "id,question,answer\nreturns,How do I return an item?,{{ nope }}\n")
    with pytest.raises(RulesError, match=r"knowledge faq.csv entry 'returns' .answer.text: "
                                         r"unknown placeholder nope"):
        load_rules(path)


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=20))
def test_any_reply_to_a_clarification_is_a_number_or_not_a_pick(text):
    # Digits int() refuses though str.isdigit() accepts them ("\u136a", "\u24f6") once
    # made the webhook answer 500, and the FAQ gaps report fail on the stored text.
    assert picked_number(text) is None or isinstance(picked_number(text), int)


def test_a_burst_no_entry_answers_whole_gets_the_answer_of_its_newest_clear_message():
    """AUTO_REPLY_DEBOUNCE answers a burst (a line per message) as one text; when the
    whole matches no entry clearly (its other messages talk of something else), its
    newest message that alone gets a clear answer is answered, as it would have been
    without the wait. Nothing clear in any line: declined as before."""
    from app.autoreply.handoff import Handoff

    burst = ("my sister is visiting from spain next week and we want to go to the zoo\n"
             "can I pay with google pay?")
    assert policy().rules.knowledge.match(burst, "SMS").outcome is Outcome.DECLINE
    decision = decide(message(burst), FRESH, policy(), NOW, composing=True)
    assert decision.rule == "faq:payment-methods" and decision.faq.outcome is Outcome.ANSWER
    assert decision.detail.endswith("one of the burst's messages)")
    nothing = decide(message("what's the weather tomorrow\nis it raining"), FRESH, policy(),
                     NOW, composing=True)
    assert nothing.rule == "fallback" and nothing.faq.outcome is Outcome.DECLINE
    # One message of several lines, no wait: matched whole, as before.
    assert decide(message(burst), FRESH, policy(), NOW).rule == "fallback"
    # A decline that hands off: the message nothing answers needs a person, burst or not.
    handing_off = policy(handoff=Handoff.build(["human"], "An agent will reply.",
                                               on_decline=True))
    handed = decide(message(burst), FRESH, handing_off, NOW, composing=True)
    assert handed.hands_off and handed.faq.outcome is Outcome.DECLINE
