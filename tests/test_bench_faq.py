"""bench/faq.py keeps running: its generated knowledge base is a rules file the server
accepts, and its worker harness starts (it broke once, unnoticed, when the loader began
refusing a question two entries share)."""

from app.autoreply import load_rules
from bench import faq


def test_the_benchmarks_knowledge_base_loads(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(faq.rules_text(200))
    knowledge = load_rules(path).knowledge
    assert len(knowledge) == 200
    assert all(len(entry.questions) == 3 for entry in knowledge.entries)


def test_the_benchmarks_workers_start(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(faq.rules_text(20))
    boots, private = faq.start_workers(path, 1)
    assert len(boots) == 1 and boots[0] > 0 and private[0] > 0
