"""The FAQ's two embedding models, and what each scores with (the rules file's `faq_model`).

    model = MODELS["sentence"]    # the default
    model.load()                  # the encoder, once per process
    model.defaults                # its thresholds, chosen on eval/clinc150

- "sentence": all-MiniLM-L6-v2 (sentence.py), a cosine with each entry's
  centroid and nothing else: on the evaluation sets BM25 and typo correction added
  nothing to it (its word pieces already read "recieve" near "receive"). 5-30 ms of CPU
  per message.
- "static" (default): WordLlama's token vectors (embedding.py) plus 0.1 x BM25, typos corrected
  (scoring.py): 0.03 ms per message, for a server where every millisecond of a webhook
  counts; it answers fewer questions at the same share of wrong answers (docs/faq.md).

Each model's scores have their own scale, so each has its own thresholds; FAQ_ANSWER_SCORE,
FAQ_MARGIN and FAQ_CLARIFY_SCORE, when set, replace them whatever the model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from .outcome import Thresholds

DEFAULT = "static"


@dataclass(frozen=True)
class Model:
    name: str
    module: str  # the module whose load() returns the encoder (imported on first use)
    lexical_weight: float  # BM25's share of the score (0: none)
    corrects_typos: bool
    defaults: Thresholds

    def load(self):
        from importlib import import_module

        loader: Callable = import_module(f"{__package__}.{self.module}").load
        return loader()


MODELS = {
    # Chosen on eval/clinc150 (tune and its seven mixes pooled: the most answered right
    # with at most 5% wrong; the clarify score offers a clarification for 8% of messages):
    # `python -m eval.thresholds eval/clinc150/faq.toml eval/clinc150/tune.jsonl --mixes`.
    "sentence": Model("sentence", "sentence", 0.0, False,
                      Thresholds(answer=0.50, margin=0.17, clarify=0.50)),
    "static": Model("static", "embedding", 0.1, True,
                    Thresholds(answer=0.45, margin=0.19, clarify=0.55)),
}
