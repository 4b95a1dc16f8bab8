"""FAQ entries from outside the rules file: a CSV file or a folder of Markdown articles.

    read(path) -> list[dict]      entries in the [[faq]] table's shape, checked like it
    to_toml(entries) -> str       `faq import`: the same entries as [[faq]] TOML to review

CSV: a header row `question,answer` and optionally `id`; several rows with one id are
several phrasings of one entry (the answer given once, or the same each time); a row
without an id is an entry of its own, named after its question.

Markdown: one article per `.md` file, named by the file (`card-delivery.md` is entry
`card-delivery`): its first heading is the question, the list items (`- ...`) right
below an `## Also asked as` heading are more phrasings, everything else is the answer.
"""

from __future__ import annotations

import csv
import io
import json
import re
from pathlib import Path

from .entries import ID_PATTERN

MAX_BYTES = 20_000_000  # a knowledge base larger than this is a mistake, not an FAQ
ALSO_ASKED = re.compile(r"^#{2,6}\s*also asked as\s*:?\s*$", re.IGNORECASE)
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$")
# Line breaks as files have them; not str.splitlines(), which also breaks at U+2028,
# form feeds and other characters that text pasted from the web or Word carries.
LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SourceError(ValueError):
    """A knowledge file cannot be read; the message names the file and the place."""


def read(path: Path) -> list[dict]:
    if path.is_dir():
        return read_markdown(path)
    if path.suffix.lower() == ".csv":
        return read_csv(path)
    raise SourceError(f"{path}: expected a .csv file or a folder of .md files")


def _text(path: Path) -> str:
    try:
        if path.stat().st_size > MAX_BYTES:
            raise SourceError(f"{path}: larger than {MAX_BYTES:,} bytes")
        return path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourceError(f"{path}: cannot read it: {exc}") from None


def read_csv(path: Path) -> list[dict]:
    # The csv module reads the line breaks itself (newline=""): a quoted answer over
    # several lines, as spreadsheets export it, keeps them.
    rows = csv.DictReader(io.StringIO(_text(path), newline=""))
    try:
        return _entries(path, rows)
    except csv.Error as exc:  # e.g. a field over the csv module's 128 KiB
        raise SourceError(f"{path}, after line {rows.line_num}: {exc}") from None


def _entries(path: Path, rows: csv.DictReader) -> list[dict]:
    columns = {name.strip().lower() for name in rows.fieldnames or []}
    if not {"question", "answer"} <= columns:
        raise SourceError(f"{path}: the header must name the columns question and answer "
                          "(and optionally id)")
    entries: dict[str, dict] = {}
    taken: dict[str, int] = {}  # every id so far -> the next suffix to try after it
    width = len(rows.fieldnames)
    for row in rows:
        number = rows.line_num  # where the row ends: a quoted field may span lines
        if None in row:  # DictReader keeps the cells past the header's under None
            raise SourceError(
                f"{path} line {number}: {width + len(row[None])} cells, the header has "
                f"{width} (an answer with a comma in it goes in double quotes)")
        row = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        question, answer, name = row.get("question", ""), row.get("answer", ""), row.get("id")
        if not question:
            raise SourceError(f"{path} line {number}: the question is empty")
        if name:
            entry = entries.setdefault(name, {"id": name, "questions": [], "answer": answer})
            if answer and entry["answer"] and answer != entry["answer"]:
                raise SourceError(f"{path} line {number}: entry {name!r} has another answer "
                                  "on an earlier line (give it once, or the same each time)")
            entry["answer"] = entry["answer"] or answer
            entry["questions"].append(question)
        else:
            name = _unique(slug(question), taken)
            entries[name] = {"id": name, "questions": [question], "answer": answer}
        taken.setdefault(name, 2)
    for name, entry in entries.items():
        if not entry["answer"]:
            raise SourceError(f"{path}: entry {name!r} has no answer")
    return list(entries.values())


MARKDOWN = (".md", ".markdown")  # any case; hidden files (".draft.md") are skipped


def read_markdown(folder: Path) -> list[dict]:
    entries = []
    articles = sorted(p for p in folder.iterdir() if p.suffix.lower() in MARKDOWN
                      and not p.name.startswith(".") and p.is_file())
    for path in articles:
        lines = LINE_BREAK.split(_text(path))
        question, phrasings, answer, in_also = None, [], [], False
        for line in lines:
            heading = HEADING.match(line)
            if question is None:
                if heading:
                    question = heading.group(1)
                elif line.strip():
                    raise SourceError(f"{path}: the first line must be a heading (the question)")
                continue
            if ALSO_ASKED.match(line):
                in_also = True
                continue
            stripped = line.strip()
            if in_also and stripped[:1] in ("-", "*", "+"):
                phrasings.append(stripped[1:].strip())
                continue
            if in_also and not stripped:
                continue
            in_also = False  # the list ended: the rest is the answer
            answer.append(line)
        if question is None:
            raise SourceError(f"{path}: no heading (the question)")
        text = "\n".join(answer).strip()
        if not text:
            raise SourceError(f"{path}: the article has no answer below its heading")
        name = path.stem if ID_PATTERN.fullmatch(path.stem) else slug(path.stem)
        if any(entry["id"] == name for entry in entries):
            raise SourceError(f"{path}: another article's file name makes the same id {name!r}")
        entries.append({"id": name, "questions": [question, *phrasings], "answer": text})
    if not entries:
        raise SourceError(f"{folder}: no .md files")
    return entries


def slug(text: str) -> str:
    words = re.findall(r"[a-z0-9]+", text.lower())
    return "-".join(words)[:50].strip("-") or "entry"


def _unique(name: str, taken: dict[str, int]) -> str:
    """`name`, or `name-2`, `name-3`, ... the first not taken (each name remembers where
    its search stopped: a file of many rows with one question stays linear)."""
    if name not in taken:
        return name
    n = taken[name]
    while f"{name}-{n}" in taken:
        n += 1
    taken[name] = n + 1
    return f"{name}-{n}"


def to_toml(entries: list[dict]) -> str:
    """[[faq]] tables for the entries (JSON strings are valid TOML basic strings)."""
    blocks = []
    for entry in entries:
        questions = ",\n  ".join(json.dumps(q, ensure_ascii=False) for q in entry["questions"])
        blocks.append(f"[[faq]]\nid = {json.dumps(entry['id'])}\n"
                      f"questions = [\n  {questions},\n]\n"
                      f"answer = {json.dumps(entry['answer'], ensure_ascii=False)}\n")
    return "\n".join(blocks)
