"""What gunicorn's master loads before it forks (gunicorn.conf.py's on_starting): what
the rules file needs, so the workers share it instead of each loading its own."""

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
