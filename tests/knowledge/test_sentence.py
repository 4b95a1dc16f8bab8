"""The sentence model (faq_model = "sentence"): all-MiniLM-L6-v2 from its pip package,
run in numpy, gives what sentence-transformers gives, offline."""

import socket

import numpy as np
import pytest

from app.autoreply import load_rules
from app.knowledge import Entry, KnowledgeBase, Outcome, sentence

TEXTS = ["When will my card arrive?", "my card still hasnt come, its been two weeks",
         "can i pay with google pay"]


@pytest.fixture(scope="module")
def encoder():
    return sentence.load()


def test_similarities_are_the_models_own(encoder):
    """Cosines as sentence-transformers 5 with PyTorch computed them for these texts (to
    1e-5): the forward pass in numpy is the model's, not an approximation of it."""
    vectors = encoder.embed(TEXTS)
    found = vectors @ vectors.T
    assert found[0, 1] == pytest.approx(0.7175391, abs=1e-5)
    assert found[0, 2] == pytest.approx(0.11685085, abs=1e-5)
    assert found[1, 2] == pytest.approx(0.11090871, abs=1e-5)


def test_a_batch_encodes_each_text_as_alone(encoder):
    """Phrasings encoded together at load (padded) equal messages encoded one by one."""
    texts = TEXTS + ["a much longer message " * 20, ""]
    together = encoder.embed(texts)
    alone = np.stack([encoder.embed_one(text) for text in texts])
    assert np.abs(together - alone).max() < 1e-5
    assert np.allclose(np.linalg.norm(alone, axis=1), 1, atol=1e-5)


def test_it_matches_with_the_network_blocked(monkeypatch):
    sentence.load.cache_clear()

    def connect(sock, address):
        raise OSError(f"network blocked in this test: {address}")

    monkeypatch.setattr(socket.socket, "connect", connect)
    kb = KnowledgeBase((Entry("card-delivery", ("When will my card arrive?",), "A"),
                        Entry("opening-hours", ("When are you open?",), "B")), "sentence")
    assert kb.match("my card still hasn't arrived, it's been two weeks").faq_id == "card-delivery"


def test_the_rules_file_chooses_the_model(tmp_path):
    """`faq_model = "sentence"` in the rules file; the static model is the default; the
    model's own thresholds apply unless FAQ_* settings are given."""
    faq = ('[[faq]]\nid = "refund-time"\nquestions = ["When will I receive my refund?", '
           '"How long do refunds take?"]\nanswer = "5 days."\n[[faq]]\nid = "hours"\n'
           'questions = ["When are you open?"]\nanswer = "9-5."\n')
    chosen, default = tmp_path / "sentence.toml", tmp_path / "static.toml"
    chosen.write_text('faq_model = "sentence"\n' + faq)
    default.write_text(faq)
    kb = load_rules(chosen).knowledge
    assert kb.model.name == "sentence" and load_rules(default).knowledge.model.name == "static"
    match = kb.match("when do i get my money back")
    assert match.outcome is Outcome.ANSWER and match.faq_id == "refund-time"
    assert kb.match("tell me a joke").outcome is Outcome.DECLINE


def test_a_process_with_the_model_runs_its_matrix_products_on_one_thread(encoder):
    """Request threads encode at once; OpenBLAS's own threads would fight them (p99 4x,
    bench/RESULTS.md): once the model is loaded, BLAS runs on the calling thread."""
    from threadpoolctl import threadpool_info, threadpool_limits

    def blas_threads():
        return {pool["num_threads"] for pool in threadpool_info() if pool["user_api"] == "blas"}

    assert blas_threads() == {1}
    with threadpool_limits(limits=2, user_api="blas"):  # numpy's default on two cores
        assert blas_threads() == {2}
        sentence.one_blas_thread()
        assert blas_threads() == {1}
