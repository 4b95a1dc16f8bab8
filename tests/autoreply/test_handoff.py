"""Handoff: asked for a person, or nothing to answer with, the bot says so once and waits."""

from __future__ import annotations

from datetime import timedelta

import pytest

from app.autoreply import Reason, decide
from app.autoreply.handoff import Handoff
from config import DEFAULT_HANDOFF_MESSAGE as DEFAULT_MESSAGE
from config import DEFAULT_HANDOFF_PHRASES as DEFAULT_PHRASES
from tests.support.decisions import NOW, RULES, message, state
from tests.support.decisions import policy as base_policy


def policy(rules: str | None = RULES, **overrides):
    return base_policy(rules, **overrides)


HANDOFF = Handoff.build(DEFAULT_PHRASES, DEFAULT_MESSAGE)


@pytest.mark.parametrize("body, phrase", [
    ("Can I talk to a HUMAN please?", "talk to a human"),
    ("I want an agent", "want an agent"),
    ("AGENT!!!", "agent"),
    ("human please", "human"),
    ("is there a real   person there", "real person"),
    ("Let me talk to someone.", "talk to someone"),
])
def test_phrases_match_as_whole_words_any_case_any_spacing(body, phrase):
    """A phrase anywhere in the message, whatever its case and spacing."""
    assert HANDOFF.asked(body) == phrase


@pytest.mark.parametrize("body", ["my card hasn't arrived", "humanity", "agents' fees",
                                  "reagent", ""])
def test_other_messages_do_not_ask(body):
    """Words that merely contain a phrase do not hand off."""
    assert HANDOFF.asked(body) is None


@pytest.mark.parametrize("body", [
    "my travel agent booked the order", "which mobile operator do you support?",
    "is this a human or a bot?", "I'm the person who ordered the blue one last week",
    "I don't want an agent, just tell me your hours", "no human", "not a human, thanks",
    "Do I need a person at home to receive the card?",
])
def test_one_word_inside_a_longer_sentence_does_not_ask(body):
    """A one-word phrase asks only in a short message ("agent", "human please"): in a
    sentence it is too often about something else, and the bot would go silent for
    HANDOFF_WINDOW on a customer who never asked for a person."""
    assert HANDOFF.asked(body) is None


def test_in_a_burst_each_message_counts_on_its_own():
    """A debounced burst is one text, a line per message: "agent" alone on its line asks,
    whatever came before it."""
    assert HANDOFF.asked("my order 1234 has not arrived\nagent") == "agent"
    assert HANDOFF.asked("hi\nhours? no, I want a human") == "want a human"


def test_configured_phrases_replace_the_defaults():
    """HANDOFF_PHRASES is the whole list."""
    mine = Handoff.build(["mensch", "berater"], "Einen Moment.")
    assert mine.asked("Ich will einen Menschen") is None
    assert mine.asked("einen Berater bitte") == "berater"
    assert mine.asked("talk to a human") is None


def test_an_empty_message_is_refused():
    with pytest.raises(ValueError, match="handoff message is empty"):
        Handoff.build(DEFAULT_PHRASES, "  ")


def test_asking_for_a_person_hands_off_even_in_the_cooldown_and_before_a_rule():
    """The request wins over the rules, and over the cooldown after the greeting."""
    rules = policy(handoff=HANDOFF)
    decision = decide(message("hours? no, I want a human"),
                      state(last_reply_at=NOW - timedelta(minutes=1)), rules, NOW)
    assert decision.reason is Reason.REPLY and decision.hands_off
    assert decision.rule == "handoff"
    assert decision.reply.body == DEFAULT_MESSAGE
    assert decision.detail == "handoff (asked for 'want a human')"


def test_once_handed_off_the_bot_is_silent_until_the_window_passes():
    """WAITING_FOR_AGENT for HANDOFF_WINDOW after the handoff message, then it answers again."""
    rules = policy(handoff=HANDOFF, cooldown=timedelta(0))
    waiting = decide(message("hello?"), state(handoff_at=NOW - timedelta(minutes=29)), rules, NOW)
    assert waiting.reason is Reason.WAITING_FOR_AGENT
    later = decide(message("hello?"), state(handoff_at=NOW - timedelta(minutes=31)), rules, NOW)
    assert later.reason is Reason.REPLY and not later.hands_off


def test_with_no_window_the_bot_waits_for_an_agent_for_good():
    """HANDOFF_WINDOW=0: silent after a handoff until an agent writes."""
    rules = policy(handoff=HANDOFF, handoff_window=timedelta(0))
    decision = decide(message(), state(handoff_at=NOW - timedelta(days=30)), rules, NOW)
    assert decision.reason is Reason.WAITING_FOR_AGENT
    assert decision.detail == "until an agent writes"


def test_handoff_on_decline_replaces_the_fallback_but_not_a_rule_or_after_hours():
    """HANDOFF_ON_DECLINE: nothing to answer with -> the handoff message; a rule still
    answers, and after hours the after-hours reply says when the team is back."""
    on_decline = Handoff.build(DEFAULT_PHRASES, DEFAULT_MESSAGE, on_decline=True)
    rules = policy(handoff=on_decline)
    declined = decide(message("my card hasn't come"), state(), rules, NOW)
    assert declined.hands_off and declined.detail == "handoff (no rule or answer matched)"
    assert decide(message("opening hours?"), state(), rules, NOW).rule == "hours"
    night = NOW + timedelta(hours=10)
    assert decide(message("my card", now=night), state(), rules, night).rule == "after_hours"
    no_file = decide(message("my card"), state(), policy(rules=None, handoff=on_decline), NOW)
    assert no_file.hands_off


def test_the_rules_files_on_decline_hands_off_without_the_setting():
    """`on_decline = "handoff"` in the rules file does what HANDOFF_ON_DECLINE does, with
    HANDOFF_ON_DECLINE off (it was accepted, then ignored: the fallback answered)."""
    text = 'on_decline = "handoff"\n' + RULES
    declined = decide(message("my card hasn't come"), state(),
                      policy(text, handoff=HANDOFF), NOW)
    assert declined.hands_off and declined.reply.body == DEFAULT_MESSAGE
    assert decide(message("opening hours?"), state(), policy(text, handoff=HANDOFF),
                  NOW).rule == "hours"
    assert decide(message("my card hasn't come"), state(), policy(RULES, handoff=HANDOFF),
                  NOW).rule == "fallback"


@pytest.mark.parametrize("body", [
    "don't need an agent", "I don't want to talk to a human, just tell me when my card arrives",
    "I do not want to speak to someone", "I never want to speak to an agent",
    "I can't talk to a human right now", "I cannot talk to an agent now",
    "I don\u2019t want an agent", "I won't need an agent",
])
def test_a_phrase_a_few_words_after_a_negation_does_not_ask(body):
    """The customer said they do not want a person: no handoff, and no silence after it."""
    assert HANDOFF.asked(body) is None


@pytest.mark.parametrize("body, phrase", [
    ("no, I want a human", "want a human"), ("no I want a human", "want a human"),
    ("not sure, can I talk to a human?", "talk to a human"),
    ("why can't I talk to a human?", "talk to a human"),
    ("don't you have a real person?", "real person"),
])
def test_a_negation_in_another_clause_or_a_question_still_asks(body, phrase):
    assert HANDOFF.asked(body) == phrase


def test_without_handoff_settings_nothing_changes():
    """No handoff configured: 'human' is an ordinary message."""
    decision = decide(message("human?"), state(), policy(RULES), NOW)
    assert decision.rule == "fallback" and not decision.hands_off
