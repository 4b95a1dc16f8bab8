"""What a rules file needs, loaded in gunicorn's master before it forks, so that the
workers forked from it share those pages (copy-on-write) instead of each loading its own:
the rules' libraries (pydantic, Jinja2's sandbox, `regex`), a country's holiday calendar
(the `holidays` package imports all of its ~280 countries, 8 MB, to find one) and, with
an FAQ, the embedding model (the tokenizer's 15 MB; its table is memory-mapped anyway)
and the matcher's libraries, and then the rules themselves with their FAQ's index (the
phrasings' vectors, BM25): a worker whose files are still what the master read takes the
master's (`preloaded`), so the index is built once per server instead of once per worker
(its memory shared; with the sentence model, seconds of each worker's boot). A worker
that finds the rules file or its `knowledge` source changed since (edited, then a worker
replaced), or any reload, reads the files itself, as before.

Light on purpose: the master imports this whatever the rules file says, and nothing is
loaded without a rules file, so a server without one carries none of it.
"""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .rules import Rules

# What the master loaded: the rules file's path, its files' fingerprint, the Rules.
_loaded: tuple[str, bytes, Rules] | None = None


def preload_for(rules_path: str | None) -> bool:
    """Load what the rules file at `rules_path` (RESPONDER_RULES as set: relative, `~`)
    needs; True when it loaded the model."""
    if not rules_path or not rules_path.strip():
        return False
    from config import file_path

    rules_path = str(file_path(rules_path))  # as the workers' settings name it
    try:
        with open(rules_path, "rb") as file:
            data = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError, RecursionError):
        return False  # the worker's own load reports what is wrong with the file
    from . import rules  # noqa: F401 - pydantic, Jinja2, regex: the import is the point

    hours = data.get("hours")
    if isinstance(hours, dict) and isinstance(hours.get("country"), str):
        from .hours import HolidayCalendar

        try:
            HolidayCalendar(hours["country"], hours.get("subdivision"))
        except Exception:  # noqa: BLE001 - the worker's own load names the mistake
            pass
    if not (data.get("faq") or data.get("knowledge")):
        return False
    from ..knowledge import scoring  # noqa: F401 - bm25s, rapidfuzz, numpy
    from ..knowledge.models import DEFAULT, MODELS

    MODELS.get(data.get("faq_model"), MODELS[DEFAULT]).load()
    _load_rules(rules_path)
    return True


def preloaded(rules_path: str | Path) -> Rules | None:
    """The master's Rules for `rules_path`, if its files are still what it read."""
    if _loaded is None or _loaded[0] != str(rules_path):
        return None  # (the worker's settings name it as preload_for stored it: resolved)
    found = fingerprint(rules_path)
    return _loaded[2] if found is not None and found == _loaded[1] else None


def _load_rules(rules_path: str) -> None:
    global _loaded
    from .rules import RulesError, load_rules

    before = fingerprint(rules_path)
    try:
        rules = load_rules(rules_path)
    except RulesError:
        return  # the worker's own load reports it, and stops the start-up
    if before is not None and fingerprint(rules_path) == before:  # not edited meanwhile
        _loaded = (str(rules_path), before, rules)


def fingerprint(rules_path: str | Path) -> bytes | None:
    """A digest of what the rules depend on: the rules file's bytes and its `knowledge`
    source's (a file, or every file under a folder, by name). None if unreadable."""
    try:
        rules = Path(rules_path)
        text = rules.read_bytes()
        digest = hashlib.sha256(text)
        knowledge = tomllib.loads(text.decode("utf-8-sig")).get("knowledge")
        if isinstance(knowledge, str):
            folder = (rules.parent if rules.is_file() else Path.cwd()).resolve()
            source = (folder / Path(knowledge).expanduser()).resolve()
            files = sorted(f for f in source.rglob("*") if f.is_file()) \
                if source.is_dir() else [source]
            for file in files:
                digest.update(str(file).encode() + b"\0" + file.read_bytes() + b"\0")
        return digest.digest()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        return None
