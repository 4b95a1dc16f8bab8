"""What a rules file depends on, as one digest: the file's bytes and its `knowledge`
source's (a CSV, or every file of a Markdown folder). `rules reload` stores it; a worker
compares it before taking gunicorn's master's rules (preload.py)."""

from __future__ import annotations

import hashlib
import tomllib
from pathlib import Path


def digest(path: Path) -> str:
    """The rules file's digest, with its `knowledge` file's (or every file in its
    knowledge folder): an FAQ edited in its spreadsheet export is a change too. What
    `rules reload` stores, and what a worker checks before taking the master's rules."""
    path = Path(path)
    text = path.read_bytes()
    found = hashlib.sha256(text)
    try:
        knowledge = tomllib.loads(text.decode("utf-8-sig")).get("knowledge")
    except (UnicodeDecodeError, tomllib.TOMLDecodeError, RecursionError):
        knowledge = None  # load_rules says what is wrong with the file
    if isinstance(knowledge, str) and knowledge:
        source = (path.parent / Path(knowledge).expanduser()).resolve()
        files = sorted(f for f in source.rglob("*") if f.is_file()) if source.is_dir() \
            else [source] if source.is_file() else []
        for file in files:
            found.update(str(file.relative_to(source.parent)).encode() + b"\0")
            found.update(hashlib.sha256(file.read_bytes()).digest())
    return found.hexdigest()[:32]


def digest_or_none(path: str | Path) -> str | None:
    """The digest, or None when the files cannot be read."""
    try:
        return digest(Path(path))
    except (OSError, ValueError, RuntimeError):  # unreadable, a NUL byte, ~nosuchuser
        return None
