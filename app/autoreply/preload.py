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

import tomllib
from pathlib import Path
from typing import TYPE_CHECKING

from .fingerprint import digest_or_none

if TYPE_CHECKING:
    from .rules import Rules

# What the master loaded: the rules file's path, its files' digest, the Rules.
_loaded: tuple[str, str, Rules] | None = None


def preload_for(rules_path: str | None) -> bool:
    """Load what the rules file at `rules_path` (RESPONDER_RULES as set: relative, `~`)
    needs; True when it loaded the model. Never raises: whatever is wrong with the file
    or the setting, the worker's own load names it and stops the start-up."""
    if not rules_path or not rules_path.strip():
        return False
    from config import file_path

    try:
        rules_path = str(file_path(rules_path))  # as the workers' settings name it
        data = tomllib.loads(Path(rules_path).read_bytes().decode("utf-8-sig"))
    except (OSError, ValueError, RuntimeError, RecursionError):  # TOML's, ~nosuchuser's
        return False
    from . import compiler  # noqa: F401 - pydantic, Jinja2, regex: the import is the point

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

    name = data.get("faq_model")
    MODELS.get(name if isinstance(name, str) else DEFAULT, MODELS[DEFAULT]).load()
    _load_rules(rules_path)
    return True


def preloaded(rules_path: str | Path) -> Rules | None:
    """The master's Rules for `rules_path`, if its files are still what it read, the
    media files its replies send are all still there, and every path the file names
    still leads where it led (no link retargeted since)."""
    if _loaded is None or _loaded[0] != str(rules_path):
        return None  # (the worker's settings name it as preload_for stored it: resolved)
    _, before, rules = _loaded
    if digest_or_none(rules_path) != before:
        return None
    if not all(Path(source).is_file() for source in rules.media_sources()
               if "://" not in source):  # a URL (compiler.py keeps paths absolute)
        return None  # the worker's own load says which one is missing
    if not all(_leads_to(given, found) for given, found in rules.located):
        return None  # a link retargeted (a media file swapped by its symlink)
    return rules


def _leads_to(given: str, found: str) -> bool:
    try:
        return str(Path(given).resolve()) == found
    except (RuntimeError, ValueError, OSError):
        return False


def _load_rules(rules_path: str) -> None:
    global _loaded
    from .compiler import load_rules

    before = digest_or_none(rules_path)
    try:
        rules = load_rules(rules_path)
    except Exception:  # noqa: BLE001 - the worker's own load reports it, and stops
        return
    if before is not None and digest_or_none(rules_path) == before:  # not edited meanwhile
        _loaded = (rules_path, before, rules)
