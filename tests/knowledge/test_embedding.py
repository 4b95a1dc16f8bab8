"""The static model's shortcuts give exactly what the slow path gives: a message's vector
from its words' remembered token ids, and BM25 read straight from bm25s's matrix."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from app.autoreply import load_rules
from app.knowledge import embedding
from app.knowledge.scoring import STOPWORDS, words

ROOT = Path(__file__).resolve().parents[2]


def customer_texts() -> list[str]:
    """What customers wrote in the evaluation sets (a few thousand messages)."""
    found = []
    for path in sorted([*ROOT.glob("eval/*/cases.jsonl"), ROOT / "eval/clinc150/test.jsonl"]):
        found += [json.loads(line)["text"] for line in path.read_text().splitlines() if line]
    return found


@pytest.fixture(scope="module")
def embedder():
    return embedding.load()


def test_a_messages_vector_from_its_words_is_the_vector_of_the_whole_text(embedder):
    texts = customer_texts()
    assert len(texts) > 1000
    for text in texts:
        found = words(text)
        assert np.array_equal(embedder.embed_words(found), embedder.embed_one(" ".join(found))), text


@settings(max_examples=300, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_characters=" \u2581<>", blacklist_categories=("Cs",)),
                        min_size=1, max_size=12), max_size=20))
def test_any_words_without_spaces_give_the_same_vector(embedder, found):
    # Accents, emoji, digits, punctuation, new lines, and words longer than one token;
    # not the tokenizer's special tokens ("</s>") nor its own space mark ("\u2581", which
    # the normaliser writes for each space: a word holding it holds a space), neither of
    # which scoring.words() ever yields (the next test).
    assert np.array_equal(embedder.embed_words(found), embedder.embed_one(" ".join(found)))


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_any_message_gives_the_same_vector_through_its_words(embedder, text):
    # What the webhook path does: any text at all, even one with "\u2581" or "</s>" in it.
    found = words(text)
    assert np.array_equal(embedder.embed_words(found), embedder.embed_one(" ".join(found)))


def test_a_very_long_message_stops_at_the_same_token(embedder):
    found = ["supercalifragilistic"] * 300  # far past MAX_TOKENS
    assert np.array_equal(embedder.embed_words(found), embedder.embed_one(" ".join(found)))


def test_bm25_read_from_the_matrix_is_bm25s_own_score():
    index = load_rules(ROOT / "eval/dev1/faq.toml").knowledge.index
    checked = 0
    for text in customer_texts():
        found = [w for w in index.correct(text) if w not in STOPWORDS and w in index.known]
        if found:
            np.testing.assert_allclose(index.bm25_scores(found), index.bm25.get_scores(found),
                                       rtol=1e-6, atol=1e-7)
            checked += 1
    assert checked > 500


def test_long_words_are_looked_up_each_time_not_remembered(embedder):
    # A pasted link or code is a word of its own to scoring.words(): remembering each one
    # would let customers' messages grow every worker's memory (31 MB with 300-character
    # words before this bound); the vector is the same either way.
    embedder.word_ids.cache_clear()
    found = ["x9" * 20, "httpsexamplecomtrack" + "q" * 30, "where", "is", "my", "order"]
    assert np.array_equal(embedder.embed_words(found), embedder.embed_one(" ".join(found)))
    assert embedder.word_ids.cache_info().currsize == 4  # the four short words only


def test_long_unknown_words_are_not_kept_by_the_spelling_cache():
    index = load_rules(ROOT / "eval/dev1/faq.toml").knowledge.index
    index.spelled.cache_clear()
    long_word = "deliveryyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"  # 37 characters, not a phrasing's word
    assert index.correct(f"{long_word} recieved") == [long_word, "received"]
    assert index.spelled.cache_info().currsize == 1  # "recieved" only
