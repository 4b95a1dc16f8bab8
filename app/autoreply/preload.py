"""What a rules file needs, loaded in gunicorn's master before it forks, so that the
workers forked from it share those pages (copy-on-write) instead of each loading its own:
the rules' libraries (pydantic, Jinja2's sandbox, `regex`), a country's holiday calendar
(the `holidays` package imports all of its ~280 countries, 8 MB, to find one) and, with
an FAQ, the embedding model (the tokenizer's 15 MB; its table is memory-mapped anyway)
and the matcher's libraries. Only modules and the model: each worker still reads the
rules file and builds its own index, after the fork (the tokenizer's parallel batch
encoding must not run in a process that forks afterwards).

Light on purpose: the master imports this whatever the rules file says, and nothing is
loaded without a rules file, so a server without one carries none of it.
"""

from __future__ import annotations

import tomllib


def preload_for(rules_path: str | None) -> bool:
    """Load what the rules file at `rules_path` needs; True when it loaded the model."""
    if not rules_path:
        return False
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
    return True
