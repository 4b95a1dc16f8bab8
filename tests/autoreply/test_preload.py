"""What gunicorn's master loads before it forks (gunicorn.conf.py's on_starting): what
the rules file needs, so the workers share it instead of each loading its own."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
HOURS = '[hours]\ntimezone = "Europe/Berlin"\nmonday = "09:00-17:00"\ncountry = "DE"\n'
FAQ = '[[faq]]\nid = "a"\nquestions = ["Where is my card?"]\nanswer = "On its way."\n'


def loaded_after_preload(rules: Path | None) -> dict:
    script = ("import sys; from app.autoreply.preload import preload_for; "
              f"model = preload_for({str(rules) if rules else None!r}); "
              "names = ('pydantic', 'holidays.countries.germany', 'numpy', 'tokenizers'); "
              "print(model, *(name in sys.modules for name in names))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    return dict(zip(("model", "pydantic", "holidays", "numpy", "tokenizers"),
                    (word == "True" for word in out), strict=True))


@pytest.mark.parametrize("content, expected", [
    (None, dict(model=False, pydantic=False, holidays=False, numpy=False, tokenizers=False)),
    (HOURS, dict(model=False, pydantic=True, holidays=True, numpy=False, tokenizers=False)),
    (HOURS + FAQ, dict(model=True, pydantic=True, holidays=True, numpy=True, tokenizers=True)),
], ids=["no rules file", "hours with a country", "and an FAQ"])
def test_the_master_loads_what_the_rules_file_needs_and_nothing_more(tmp_path, content,
                                                                      expected):
    rules = None
    if content is not None:
        rules = tmp_path / "rules.toml"
        rules.write_text(content)
    assert loaded_after_preload(rules) == expected


def test_a_rules_file_without_an_faq_never_loads_the_matcher(tmp_path):
    """A worker loading rules without [[faq]] carries no numpy, bm25s or tokenizer."""
    rules = tmp_path / "rules.toml"
    rules.write_text(HOURS)
    script = ("import sys; from app.autoreply import load_rules; "
              f"assert load_rules({str(rules)!r}).knowledge is None; "
              "print(*(name in sys.modules for name in ('numpy', 'bm25s', 'tokenizers')))")
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True).stdout.split()
    assert out == ["False", "False", "False"]


CSV = "question,answer,id\nCan I pay with Google Pay?,Yes: Google Pay and Apple Pay.,pay\n"


@pytest.fixture
def master(monkeypatch):
    """preload_for as gunicorn's master runs it; its module state restored afterwards."""
    from app.autoreply import preload

    monkeypatch.setattr(preload, "_loaded", None)
    return preload


def rules_with_knowledge(tmp_path: Path) -> tuple[Path, Path]:
    csv = tmp_path / "faq.csv"
    csv.write_text(CSV)
    rules = tmp_path / "rules.toml"
    rules.write_text('knowledge = "faq.csv"\n' + FAQ)
    return rules, csv


def test_workers_take_the_masters_rules_and_index_while_the_files_are_unchanged(
        tmp_path, master):
    rules, _ = rules_with_knowledge(tmp_path)
    assert master.preload_for(str(rules)) is True
    taken = master.preloaded(str(rules))
    assert taken is not None and taken is master.preloaded(str(rules))
    assert taken.knowledge.match("where is my card").entry.id == "a"
    assert taken.knowledge.match("can i pay with google pay").entry.id == "pay"


def test_a_relative_rules_path_is_taken_as_the_workers_settings_name_it(
        tmp_path, master, monkeypatch):
    """RESPONDER_RULES=rules.toml, as the README sets it: the master resolves it the way
    the workers' settings do, or no worker would ever take its rules."""
    from config import load_settings

    rules_with_knowledge(tmp_path)
    monkeypatch.chdir(tmp_path)
    master.preload_for("rules.toml")
    worker_path = load_settings({"RESPONDER_RULES": "rules.toml"}).bot.rules_path
    taken = master.preloaded(worker_path)
    assert taken is not None and taken.knowledge.match("can i pay with google pay").entry.id == "pay"


@pytest.mark.parametrize("edit", ["rules file", "knowledge file"])
def test_a_worker_reads_the_files_itself_once_they_changed(tmp_path, master, edit):
    """A worker forked after an edit (a replaced worker; `rules reload` reads the files
    anyway) must not get the master's old rules."""
    rules, csv = rules_with_knowledge(tmp_path)
    master.preload_for(str(rules))
    changed = rules if edit == "rules file" else csv
    original = changed.read_text()
    changed.write_text(original + ("\n" if edit == "rules file" else
                                   "Do you ship abroad?,Yes.,ship\n"))
    assert master.preloaded(str(rules)) is None
    changed.write_text(original)
    assert master.preloaded(str(rules)) is not None  # the same content again


def test_a_broken_rules_file_is_left_to_the_worker(tmp_path, master):
    rules = tmp_path / "rules.toml"
    rules.write_text(FAQ + '[[faq]]\nid = "a"\nquestions = ["x"]\nanswer = "y"\n')  # twice
    master.preload_for(str(rules))
    assert master.preloaded(str(rules)) is None


def test_a_worker_forked_after_the_preload_answers_with_the_masters_index(tmp_path):
    """The index is built in the master; a forked worker takes it and matches (the
    tokenizer, used before the fork, still works after it)."""
    rules, _ = rules_with_knowledge(tmp_path)
    script = f"""
import os, sys
from app.autoreply.preload import preload_for, preloaded
preload_for({str(rules)!r})
pid = os.fork()
if pid == 0:
    rules = preloaded({str(rules)!r})
    print(rules.knowledge.match("hi, can i pay with google pay?").entry.id, flush=True)
    os._exit(0)
os.waitpid(pid, 0)
"""
    done = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                          text=True, check=True, timeout=120)
    assert done.stdout.split() == ["pay"]


@pytest.mark.parametrize("value", ['["sentence"]', '{name = "x"}', '"bogus"'])
def test_a_bad_faq_model_is_left_to_the_worker_to_name(tmp_path, master, value):
    """The master must not crash with a traceback on what `rules check` explains."""
    rules = tmp_path / "rules.toml"
    rules.write_text(f"faq_model = {value}\n" + FAQ)
    master.preload_for(str(rules))
    assert master.preloaded(str(rules)) is None


def test_a_rules_file_with_a_byte_order_mark_is_shared_too(tmp_path, master):
    rules = tmp_path / "rules.toml"
    rules.write_bytes(b"\xef\xbb\xbf" + FAQ.encode())
    assert master.preload_for(str(rules)) is True
    assert master.preloaded(str(rules)) is not None


def test_a_worker_does_not_take_rules_whose_media_file_is_gone(tmp_path, master):
    """The master checked the reply's image at load; removed since, a worker loads the
    file itself (and refuses to start, naming it) rather than fail every send."""
    image = tmp_path / "hours.png"
    image.write_bytes((ROOT / "media" / "opening-hours.png").read_bytes())
    rules = tmp_path / "rules.toml"
    rules.write_text(FAQ + '[[faq]]\nid = "hours"\nquestions = ["When are you open?"]\n'
                     '[faq.answer]\ntext = "See the picture."\nmedia = "hours.png"\n')
    master.preload_for(str(rules))
    assert master.preloaded(str(rules)) is not None
    image.unlink()
    assert master.preloaded(str(rules)) is None


def test_a_worker_does_not_take_rules_whose_media_link_now_leads_elsewhere(tmp_path, master):
    """A deployment swaps the image a reply sends by pointing its symlink at a new file
    (the old one kept): a worker started after that sends the new image, as a worker
    reading the file itself would, not the one the master's rules resolved to."""
    old, new = tmp_path / "hours-2025.png", tmp_path / "hours-2026.png"
    old.write_bytes((ROOT / "media" / "opening-hours.png").read_bytes())
    new.write_bytes(old.read_bytes() + b"\0")
    link = tmp_path / "hours.png"
    link.symlink_to(old.name)
    rules = tmp_path / "rules.toml"
    rules.write_text(FAQ + '[[faq]]\nid = "hours"\nquestions = ["When are you open?"]\n'
                     '[faq.answer]\ntext = "See the picture."\nmedia = "hours.png"\n')
    master.preload_for(str(rules))
    shared = master.preloaded(str(rules))
    assert shared is not None and str(old) in shared.media_sources()
    link.unlink()
    link.symlink_to(new.name)
    assert master.preloaded(str(rules)) is None
    from app.autoreply import load_rules
    assert str(new) in load_rules(rules).media_sources()  # what the worker reads itself


def test_the_master_has_no_thread_of_its_own_when_it_forks(tmp_path):
    """Building the index before the fork leaves no thread running in the master (bm25s's
    progress bars once left tqdm's monitor thread, and its process-shared lock, for every
    worker to inherit): a fork copies only the thread that calls it, with whatever locks
    the others held at that moment."""
    rules, _ = rules_with_knowledge(tmp_path)
    script = ("import threading; from app.autoreply.preload import preload_for; "
              f"assert preload_for({str(rules)!r}); "
              "print(*sorted(t.name for t in threading.enumerate()))")
    env = {k: v for k, v in os.environ.items() if k != "DISABLE_TQDM"}
    out = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True,
                         text=True, check=True, env=env).stdout.split()
    assert out == ["MainThread"]
