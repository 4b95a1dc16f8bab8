"""The embedding model loaded in gunicorn's master, before it forks, when the rules file
has an FAQ: the workers forked from it share the tokenizer's 15 MB (copy-on-write) besides
the mapped table; loaded in each worker instead, each would pay for its own.

Light on purpose: the master imports this whatever the rules file says, and numpy and the
tokenizer (embedding.py) are imported only when an FAQ needs them, so that a server
without one carries neither, in its master or its workers.
"""

from __future__ import annotations

import tomllib


def preload_for(rules_path: str | None) -> bool:
    """Load the model now if the rules file at `rules_path` has an FAQ; True when it did."""
    if not rules_path:
        return False
    try:
        with open(rules_path, "rb") as file:
            data = tomllib.load(file)
    except (OSError, tomllib.TOMLDecodeError, RecursionError):
        return False  # the worker's own load reports what is wrong with the file
    if not (data.get("faq") or data.get("knowledge")):
        return False
    from .embedding import load

    load()
    return True
