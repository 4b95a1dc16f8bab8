"""The static embedding model: WordLlama's 256-dimension token vectors, from its pip wheel.

The `wordllama` wheel carries its weights (weights/l2_supercat_256.safetensors, 32,000
x 256 float16, 16 MB) and its tokenizer (tokenizers/l2_supercat_tokenizer_config.json).
They are read here from the package's folder, never downloaded: nothing on this path
opens a socket. The package itself is not imported, for two reasons: importing it calls
`logging.basicConfig(level=INFO)` (it would take over the server's logging), and
`WordLlama.load` copies the table into float32 (32 MB per gunicorn worker). Instead the
safetensors file is memory-mapped read-only: every worker of a server (and every server
on the machine) shares the same pages of the page cache, and a text's vector is the mean
of its tokens' rows, normalised, exactly what WordLlama's `embed(norm=True)` computes
(summed rather than averaged: normalising makes them the same).
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import threading
from dataclasses import dataclass, field
from functools import cache, lru_cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

WEIGHTS = "weights/l2_supercat_256.safetensors"
TOKENIZER = "tokenizers/l2_supercat_tokenizer_config.json"
TENSOR = "embedding.weight"
DIMENSIONS = 256
MAX_TOKENS = 512  # a message's first 512 tokens say what it is about
# Words whose token ids each process remembers: customers' words are few and repeat, and
# a call of the tokenizer costs more than the rest of a message's vector. Only words of
# up to CACHED_WORD_LENGTH characters (nearly every real one): a pasted token or URL is
# looked up each time, so the cache stays small whatever customers send (full of random
# 24-character words, with scoring.py's spelling cache full too: 4.2 MB per process).
WORD_CACHE = 4096
CACHED_WORD_LENGTH = 24


class ModelMissing(RuntimeError):
    """The embedding model's files are not where the wordllama wheel puts them."""


def package_folder() -> Path:
    """The installed wordllama package's folder, found without importing it."""
    spec = importlib.util.find_spec("wordllama")
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing("the wordllama package is not installed (requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def _memory_map(path: Path) -> np.ndarray:
    """A safetensors file's one tensor, memory-mapped read-only (the format: an 8-byte
    little-endian header length, a JSON header, then the raw little-endian data)."""
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    tensor = header[TENSOR]
    if tensor["dtype"] != "F16" or len(tensor["shape"]) != 2:
        raise ModelMissing(f"{path}: unexpected tensor {tensor['dtype']} {tensor['shape']}")
    start, end = tensor["data_offsets"]
    rows, columns = tensor["shape"]
    table = np.memmap(path, dtype="<f2", mode="r", offset=8 + length + start,
                      shape=(rows, columns))
    if (end - start) != rows * columns * 2:
        raise ModelMissing(f"{path}: the tensor's size does not match its shape")
    # A plain ndarray over the same mapping: np.memmap's __getitem__ runs Python code on
    # every look-up (a third of embedding one message).
    return np.asarray(table)


def remembered(function, maxsize: int):
    """`function` of a word, its answers remembered (an LRU of `maxsize`) for words of up
    to CACHED_WORD_LENGTH characters only; with lru_cache's cache_info and cache_clear."""
    cached = lru_cache(maxsize=maxsize)(function)

    def call(word: str):
        return cached(word) if len(word) <= CACHED_WORD_LENGTH else function(word)

    call.cache_info, call.cache_clear = cached.cache_info, cached.cache_clear
    return call


@dataclass(frozen=True)
class Embedder:
    """Texts to unit vectors (float32, DIMENSIONS wide)."""

    table: np.ndarray  # (vocabulary, DIMENSIONS) float16, memory-mapped
    tokenizer: Tokenizer
    lock: threading.Lock  # tokenizers' Tokenizer is not documented as thread-safe
    word_ids: object = field(init=False, repr=False, compare=False)  # word -> its ids

    def __post_init__(self):
        object.__setattr__(self, "word_ids", remembered(self._word_ids, WORD_CACHE))

    def _word_ids(self, word: str) -> tuple[int, ...]:
        return tuple(self._known(self.token_ids(word)))

    def token_ids(self, text: str) -> list[int]:
        with self.lock:
            ids = self.tokenizer.encode(text, add_special_tokens=False).ids
        return ids[:MAX_TOKENS]

    def is_word(self, word: str) -> bool:
        """Whether the tokenizer knows `word` whole (a real word, not a typo of one)."""
        return self.tokenizer.token_to_id("\u2581" + word) is not None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Many texts (an index's phrasings), tokenized one after the other in this thread:
        gunicorn's master builds the index before it forks (autoreply/preload.py), and the
        tokenizer's parallel `encode_batch` must not run in a process that forks later."""
        vectors = np.zeros((len(texts), self.table.shape[1]), dtype=np.float32)
        for row, text in enumerate(texts):
            ids = self._known(self.token_ids(text))
            if ids:  # the sum, not the mean: the same direction, and normalised below
                vectors[row] = self.table[ids].sum(axis=0, dtype=np.float32)
        return normalise(vectors)

    def embed_one(self, text: str) -> np.ndarray:
        """One message's unit vector (zero if it has no known token), in as few numpy
        calls as it takes: on the webhook path each costs several microseconds when the
        request's other work has pushed numpy out of the CPU's caches."""
        return self._unit(self._known(self.token_ids(text)))

    def embed_words(self, words: list[str]) -> np.ndarray:
        """What embed_one(" ".join(words)) returns, for scoring.words()'s words, from each
        word's remembered token ids. The same ids: the tokenizer has no pre-tokenizer, only
        a normaliser that writes each space as "\u2581", and no token of its vocabulary
        spans a "\u2581" between two other characters, so a text's ids are its words'
        ids one after the other (tests/knowledge/test_embedding.py checks it). Not for
        its special tokens ("</s>") nor for words holding its space mark "\u2581", which
        words() never yields."""
        ids: list[int] = []
        for word in words:
            ids.extend(self.word_ids(word))
            if len(ids) >= MAX_TOKENS:
                del ids[MAX_TOKENS:]
                break
        return self._unit(ids)

    def _unit(self, ids: list[int]) -> np.ndarray:
        if not ids:
            return np.zeros(self.table.shape[1], dtype=np.float32)
        vector = self.table[ids].sum(axis=0, dtype=np.float32)
        length = math.sqrt(float(vector.dot(vector)))
        return vector / length if length else vector

    def _known(self, ids: list[int]) -> list[int]:
        size = self.table.shape[0]
        return [i for i in ids if 0 <= i < size]


@cache
def load() -> Embedder:
    """The model, once per process (its table shared between processes by the page cache)."""
    folder = package_folder()
    weights, tokenizer = folder / WEIGHTS, folder / TOKENIZER
    for path in (weights, tokenizer):
        if not path.is_file():
            raise ModelMissing(f"{path} is missing: reinstall wordllama from requirements.txt")
    loaded = Tokenizer.from_file(str(tokenizer))
    loaded.no_padding()
    loaded.no_truncation()
    return Embedder(_memory_map(weights), loaded, threading.Lock())


def normalise(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length (zero rows stay zero)."""
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)

