"""The score of a message against every entry: an embedding, and with the static model
BM25 and typos too.

    index = Index(entries, models.MODELS["static"])    # at load: every phrasing embedded
    index.scores(text) -> np.ndarray                    # one score per entry, about 0..1

With the sentence model (models.py) an entry's score is the cosine of the
message's embedding with the entry's centroid, nothing else. With the static model, an
entry's score is the cosine of the message's embedding with the entry's centroid
(the mean of its phrasings' embeddings: meaning, so "card hasn't come" is near "where is
my card"), plus the model's lexical weight (0.1) times its phrasings' mean BM25 (bm25s), normalised by the
most the message's own words could score, so that 0 means no word in common and 1 every
word as strongly as the index allows (words no entry uses count in that bound: a long
message about something else scores low). Before either, each word no entry uses is
replaced by the nearest word one does, when rapidfuzz finds one at least TYPO_SIMILARITY
close ("recieve" -> "receive"), unless it is a word of its own: one the embedding's
tokenizer knows whole ("regards" is not a typo of "rewards").

Why a centroid rather than the best phrasing: on eval/clinc150's tuning cases, the best
phrasing's cosine answered 11% of the answerable questions at <= 5% wrong answers, the
centroid 48% (a prototype averages out what one phrasing says by accident, and the lead
of the best entry over the second means more). BM25 adds little on CLINC's paraphrases
(0 to +1 point) but keeps product names and codes that an embedding blurs.
"""

from __future__ import annotations

import logging
import os
import re

# bm25s draws progress bars with tqdm, which starts a monitor thread and creates a
# process-shared lock even for a disabled bar: in gunicorn's master, which builds the index
# before it forks (autoreply/preload.py), a thread and a lock every worker would inherit.
# DISABLE_TQDM, read when bm25s is imported, makes it use its own no-op stand-in.
os.environ.setdefault("DISABLE_TQDM", "1")

import bm25s
import numpy as np
from rapidfuzz import fuzz, process

from . import embedding
from .entries import Entry
from .models import DEFAULT, MODELS, Model

# bm25s sets its own logger to DEBUG at import: every index built would print a line.
logging.getLogger("bm25s").setLevel(logging.WARNING)

TYPO_SIMILARITY = 84  # rapidfuzz ratio, 0..100
TYPO_MIN_LENGTH = 5  # shorter words are too often another real word ("pink", "pin")
MAX_WORDS = 200  # a message's first 200 words say what it is about
SPELLING_CACHE = 2048  # unknown words whose correction each index remembers

_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
# Words that say nothing about which question it is (BM25 would still weigh them).
STOPWORDS = frozenset("""
a an and are as at be been but by can could did do does doing for from had has have how i
i'd i'm i've if in into is it it's its me my of on or our please so than that the their
them then there these they this to too us was we were what when where which who why will
with would you your yours hi hello hey thanks thank just get got im ive id dont cant
""".split())


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())[:MAX_WORDS]


class Index:
    """Every entry's phrasings, embedded and indexed for BM25."""

    def __init__(self, entries: tuple[Entry, ...], model: Model = MODELS[DEFAULT],
                 embedder=None):
        self.model = model
        self.embedder = embedder or model.load()
        phrasings = [(row, q) for row, entry in enumerate(entries) for q in entry.questions]
        self.entry_of = np.array([row for row, _ in phrasings], dtype=np.int64)
        self.size = len(entries)
        texts = [q for _, q in phrasings]
        vectors = self.embedder.embed(texts)  # (phrasings, DIMENSIONS)
        sums = np.zeros((self.size, vectors.shape[1]), dtype=np.float32)
        np.add.at(sums, self.entry_of, vectors)  # once, at load
        self.centroids = embedding.normalise(sums)  # (entries, DIMENSIONS)
        phrasings_of = np.bincount(self.entry_of, minlength=self.size).astype(np.float32)
        # LEXICAL_WEIGHT times the mean over an entry's phrasings, as one factor per entry.
        self.lexical_factor = model.lexical_weight / np.maximum(phrasings_of, 1)
        tokens = [[w for w in words(t) if w not in STOPWORDS] or ["_"] for t in texts]
        self.vocabulary = sorted({w for ws in tokens for w in ws})
        self.known = frozenset(self.vocabulary)
        # Per index (a reload builds a new one): the same words come back message after
        # message ("delivered", "yesterday"), and each look-up scans the vocabulary.
        self.spelled = embedding.remembered(self._spelled, SPELLING_CACHE)
        self.bm25 = bm25s.BM25()
        self.bm25.index(tokens, show_progress=False)
        # The most one word can add to any phrasing's BM25 score: the normaliser's parts.
        self.word_max = _word_max(self.bm25)
        # bm25s's word-by-phrasing score matrix (CSC), read directly per message: its
        # get_scores turns words into ids and columns into arrays in several numpy calls
        # that cost more than the sum itself on the webhook path.
        matrix = self.bm25.scores
        self.columns = {word: (int(matrix["indptr"][column]), int(matrix["indptr"][column + 1]))
                        for word, column in self.bm25.vocab_dict.items()
                        if word and column + 1 < len(matrix["indptr"])}
        self.column_data, self.column_rows = matrix["data"], matrix["indices"]
        self.phrasings = len(texts)
        self.unknown_weight = max(self.word_max.values(), default=1.0)

    def correct(self, text: str) -> list[str]:
        """The message's words, each unknown one replaced by a known one it is a typo of
        (with a model that corrects typos)."""
        if not self.model.corrects_typos:
            return words(text)
        known = self.known
        return [word if word in known or len(word) < TYPO_MIN_LENGTH else self.spelled(word)
                for word in words(text)]

    def _spelled(self, word: str) -> str:
        """A word no phrasing uses, as the known word it is a typo of (itself if none)."""
        if word in STOPWORDS or self.embedder.is_word(word):
            return word
        found = process.extractOne(word, self.vocabulary, scorer=fuzz.ratio,
                                   score_cutoff=TYPO_SIMILARITY)
        return found[0] if found else word

    def scores(self, text: str) -> np.ndarray:
        """One score per entry, in entry order."""
        if self.size == 0:
            return np.zeros(0, dtype=np.float32)
        if not self.model.lexical_weight:
            return np.einsum("ij,j->i", self.centroids, self.embedder.embed_one(text))
        fixed = self.correct(text)
        query = self.embedder.embed_words(fixed) if fixed else self.embedder.embed_one(text)
        # einsum, not `@`: a matrix-vector product through OpenBLAS starts its threads in
        # every webhook thread, and on a busy machine waits for them (12 ms instead of 1
        # for 5,000 entries on 2 loaded cores); einsum's own loop runs in this thread.
        semantic = np.einsum("ij,j->i", self.centroids, query)
        content = [w for w in fixed if w not in STOPWORDS]
        bound = sum(self.word_max.get(w, self.unknown_weight) for w in set(content))
        found = [w for w in content if w in self.known]
        if not found or bound <= 0:
            return semantic  # no word in common with any phrasing: no lexical part
        lexical = np.minimum(self.bm25_scores(found) / bound, 1.0)
        lexical_sums = np.bincount(self.entry_of, weights=lexical, minlength=self.size)
        return semantic + self.lexical_factor * lexical_sums

    def bm25_scores(self, found: list[str]) -> np.ndarray:
        """Each phrasing's BM25 score for these known words (a repeated word counts again,
        as in bm25s's get_scores): the sum of their columns."""
        total = np.zeros(self.phrasings, dtype=np.float32)
        for word in found:
            start, end = self.columns.get(word, (0, 0))
            total[self.column_rows[start:end]] += self.column_data[start:end]
        return total


def _word_max(bm25: bm25s.BM25) -> dict[str, float]:
    """The most each word adds to any phrasing's score: the largest entry of its column in
    bm25s's word-by-phrasing score matrix (CSC: data, indptr), read in one pass."""
    data, indptr = bm25.scores["data"], bm25.scores["indptr"]
    found = {}
    for word, column in bm25.vocab_dict.items():
        if not word or column + 1 >= len(indptr):
            continue  # bm25s's empty token
        start, end = indptr[column], indptr[column + 1]
        if end > start:
            found[word] = float(data[start:end].max())
    return found
