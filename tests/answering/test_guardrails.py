"""Guardrails: no model output reaches a customer unless it is grounded in what it cites."""

from __future__ import annotations

import json

import pytest

from app.answering.guardrails import Refused, check, ungrounded_facts
from app.autoreply.assist import Action

RETRIEVED = {
    "fees": "How much is a transfer abroad?\nA transfer abroad costs $2.50, or 1% above "
            "1,000 EUR. Details: https://bank.example/fees",
    "contact": "How do I reach you?\nCall +1 (555) 010-2000 or write to help@bank.example.",
    "card-delivery": "When will my card arrive?\nCards arrive within 7 working days.",
}


def output(action="answer", text="", cited=("fees",)) -> str:
    return json.dumps({"action": action, "text": text, "cited": list(cited)})


@pytest.mark.parametrize("text, cited", [
    ("A transfer abroad costs $2.50, or 1% above 1000 EUR.", ["fees"]),
    ("Transfers abroad cost $2.50; details at https://bank.example/fees.", ["fees"]),
    ("Call +1 555 010 2000 or write to help@bank.example.", ["contact"]),
    ("Your card should arrive within 7 working days.", ["card-delivery"]),
])
def test_a_grounded_answer_passes(text, cited):
    """Rephrased, but every fact as written in the cited entry."""
    assist = check(output(text=text, cited=cited), RETRIEVED, 1600)
    assert assist.action is Action.ANSWER and assist.text == text
    assert assist.cited == tuple(cited)


@pytest.mark.parametrize("raw, why", [
    (output(text="A transfer abroad costs $2.50.", cited=[]), "cites no entry"),
    (output(text="A transfer abroad costs $2.50.", cited=["secret-entry"]),
     "cites entries it was not given: secret-entry"),
    (output(text="A transfer abroad costs $1.50.", cited=["fees"]), "not in the cited entries: 1.50"),
    (output(text="A transfer abroad costs $2.50 and cards arrive within 7 working days.",
            cited=["fees"]), "not in the cited entries: 7"),
    (output(text="Transfer fees: see https://evil.example/fees", cited=["fees"]),
     "not in the cited entries: https://evil.example/fees"),
    (output(text="Write to refunds@bank.example about transfer fees.", cited=["fees"]),
     "not in the cited entries: refunds@bank.example"),
    (output(text="Call +1 555 999 0000 about your transfer.", cited=["contact"]),
     "not in the cited entries: +1 555 999 0000"),
    (output(text="Our competitor's accounts are terrible and overpriced.", cited=["fees"]),
     "of its words are in the cited entries"),
    (output(text="costs $2.50 " * 200, cited=["fees"]), "the channel takes 1,600"),
    (output(text="   ", cited=["fees"]), "the answer is empty"),
    (output(action="clarify", cited=["fees"]), "a clarification must cite 2 or 3 entries"),
    (output(action="refund everyone"), "unknown action"),
    ("Sure! A transfer abroad costs $2.50.", "not JSON"),
    ('["answer"]', "not a JSON object"),
    ('{"action": "answer", "text": 5, "cited": "fees"}', "text must be a string"),
])
def test_each_guardrail_refuses(raw, why):
    """Each guardrail, alone, refuses the output (then the customer gets a decline)."""
    with pytest.raises(Refused, match=why.replace("$", r"\$").replace("+", r"\+")):
        check(raw, RETRIEVED, 1600)


def test_the_channel_limit_is_the_one_given():
    """Length is checked against the channel's limit, not a constant."""
    text = "A transfer abroad costs $2.50."
    assert check(output(text=text), RETRIEVED, len(text)).action is Action.ANSWER
    with pytest.raises(Refused, match="takes 10"):
        check(output(text=text), RETRIEVED, 10)


def test_clarify_and_decline():
    """A clarification names two or three given entries; a decline needs nothing."""
    assert check(output("clarify", cited=["fees", "contact"]), RETRIEVED, 1600).cited == (
        "fees", "contact")
    assert check(output("decline", cited=[]), RETRIEVED, 1600).action is Action.DECLINE


def test_a_fenced_json_answer_is_read():
    """Small local models wrap JSON in a ``` fence; the content is still checked."""
    raw = "```json\n" + output(text="A transfer abroad costs $2.50.") + "\n```"
    assert check(raw, RETRIEVED, 1600).action is Action.ANSWER


@pytest.mark.parametrize("text, source, missing", [
    ("It costs 1,000 EUR", "1000 EUR", []),
    ("It costs 2,50 EUR", "2.50 EUR", []),
    ("Open 9 to 17", "Open 9-17", []),
    ("Open 9 to 18", "Open 9-17", ["18"]),
    ("see www.bank.example/x.", "www.bank.example/x", []),
    ("Track it at evil.example/card7", "Track it in the app", ["evil.example/card7"]),
    ("see bit.ly/x.", "the app", ["bit.ly/x"]),  # a phone makes both clickable
    ("mail help@bank.example", "help@bank.example", []),
    ("see bank.example/help", "https://bank.example/help", []),
    ("costs 2.50 EUR, e.g. by card", "2.50 EUR", []),
    # Each once passed (an adversarial pass, through the webhook and the fake model):
    ("arrive within three working days", "arrive within 7 working days", ["three"]),
    ("see bank.com/cards", "see https://mybank.com/cards", ["bank.com/cards"]),
    ("see myb\u0430nk.com/cards", "see https://mybank.com/cards", ["myb\u0430nk.com/cards"]),
    ("see \u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444/cards", "the app",
     ["\u043f\u0440\u0438\u043c\u0435\u0440.\u0440\u0444/cards"]),
    ("write p@mybank.co", "write help@mybank.com", ["p@mybank.co"]),
    # ... and these stay grounded:
    ("after ten days", "after 10 days", []),
    ("one of our agents replies within 7 days", "within 7 days", []),
    ("see https://www.mybank.com/cards/ or mybank.com", "see mybank.com/cards", []),
    # ... and these, which a review found refused after that change:
    ("see https://bank.example/fees", "**https://bank.example/fees**", []),
    ("see https://bank.example/fees", "https://bank.example/fees?lang=en", []),
    ("see bank.example/fees", "\u201chttps://bank.example/fees#cards\u201d", []),
    ("open twenty-four hours", "open 24 hours", []),
    ("it costs two hundred euros", "it costs 200 EUR", []),
    ("please think twice", "the app", []),
    ("within \u017fix days", "within 6 days", []),  # no KeyError: not an English word
    ("\u30ab\u30fc\u30c9\u306f7\u65e5\u4ee5\u5185\u306b\u5c4a\u304d\u307e\u3059."
     "\u8a73\u3057\u304f\u306f\u30a2\u30d7\u30ea\u3067", "7", []),  # no link in it
    # ... while these stay refused:
    ("see http://bank.example/fees", "https://bank.example/fees", ["http://bank.example/fees"]),
    ("see bank.example/fees?amount=5", "https://bank.example/fees",
     ["bank.example/fees?amount=5"]),
    ("open twenty-five hours", "open 24 hours", ["twenty-five"]),
])
def test_facts_are_compared_as_written_with_usual_spellings(text, source, missing):
    assert ungrounded_facts(text, source) == missing
