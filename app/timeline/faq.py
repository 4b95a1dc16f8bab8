"""The FAQ's record, read back: one message's match (`why`, the API), the questions it did
not answer grouped by similarity (`faq gaps`, the dashboard), and an operator marking a
decision wrong (the same action from the CLI, the API and the dashboard)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, func, or_, select, update

from ..logs import kv
from ..store.models import FaqMatch, utcnow

log = logging.getLogger(__name__)
FAQ_MATCHES = FaqMatch.__table__
# The cosine of two questions' embeddings that puts them in one group: on CLINC150's
# validation queries, 86% of the pairs this close ask the same thing (0.75: 94%, but
# only half as many pairs of one intent are found).
SAME_QUESTION = 0.65
MAX_GAP_ROWS = 5_000  # the most recent questions grouped at once


def match_of(conn: Connection, message_sid: str) -> dict | None:
    """A message's FAQ match as recorded: outcome, faq_id, candidates, wrong_at."""
    found = matches_of(conn, [message_sid]).get(message_sid)
    if found is not None:
        found["wrong_at"] = found["wrong_at"].isoformat() + "Z" if found["wrong_at"] else None
    return found


def matches_of(conn: Connection, message_sids: list[str]) -> dict[str, dict]:
    """These messages' FAQ matches by message SID (the thread shows each under its
    message); wrong_at as stored (naive UTC)."""
    if not message_sids:
        return {}
    return {row.message_sid: {
        "outcome": row.outcome, "faq_id": row.faq_id,
        "candidates": json.loads(row.candidates or "[]"), "wrong_at": row.wrong_at}
        for row in conn.execute(select(FAQ_MATCHES).where(
            FAQ_MATCHES.c.message_sid.in_(message_sids)))}


def mark_wrong(conn: Connection, message_sid: str, wrong: bool = True,
               by: str = "cli") -> str | None:
    """Mark the FAQ's decision on a message wrong (it shows in `faq gaps`; marked again,
    it keeps its first time), or no longer (`wrong=False`: an operator's slip undone).
    Returns the message's conversation; None when the message has no FAQ match recorded."""
    conversation_sid = conn.execute(
        update(FAQ_MATCHES).where(FAQ_MATCHES.c.message_sid == message_sid)
        .values(wrong_at=func.coalesce(FAQ_MATCHES.c.wrong_at, utcnow()) if wrong else None)
        .returning(FAQ_MATCHES.c.conversation_sid)).scalar()
    if conversation_sid is not None:
        log.info("FAQ decision %s %s", "marked wrong" if wrong else "no longer marked wrong",
                 kv(message=message_sid, conversation=conversation_sid, by=by))
    return conversation_sid


@dataclass
class Gap:
    """Questions that read alike, and what the bot did with them."""

    texts: list[str] = field(default_factory=list)
    declined: int = 0
    clarified: int = 0
    wrong: int = 0
    nearest: dict[str, int] = field(default_factory=dict)  # best candidate -> times
    wrongly: dict[str, int] = field(default_factory=dict)  # entry that answered wrong -> times

    @property
    def count(self) -> int:
        return len(self.texts)

    def as_dict(self) -> dict:
        return {"count": self.count, "declined": self.declined, "clarified": self.clarified,
                "marked_wrong": self.wrong, "nearest_entry": _most(self.nearest),
                "answered_wrongly_by": _most(self.wrongly),
                "examples": list(dict.fromkeys(self.texts))[:EXAMPLES]}


EXAMPLES = 3  # distinct texts shown of a group


def _most(counts: dict[str, int]) -> str | None:
    return max(counts, key=counts.get) if counts else None


@dataclass(frozen=True)
class _Row:
    id: int
    text: str
    outcome: str
    candidates: list[dict]
    wrong: bool
    faq_id: str | None
    conversation_sid: str


def gaps(conn: Connection, since: datetime, limit: int = 20) -> list[Gap]:
    """Declined and clarified questions since `since` (naive UTC), and answers marked wrong,
    grouped by meaning (greedily, each to the first group it is SAME_QUESTION close to),
    largest group first."""
    c = FAQ_MATCHES.c
    rows = [_Row(r.id, r.text, r.outcome, json.loads(r.candidates or "[]"),
                 r.wrong_at is not None, r.faq_id, r.conversation_sid)
            for r in conn.execute(
                select(c.id, c.text, c.outcome, c.candidates, c.wrong_at, c.faq_id,
                       c.conversation_sid)
                .where(c.created_at >= since, or_(c.outcome != "answer", c.wrong_at.is_not(None)))
                .order_by(c.created_at.desc(), c.id.desc()).limit(MAX_GAP_ROWS))]
    rows = _picks_as_questions(rows)
    if not rows:
        return []
    # Here, not at the top: every worker imports this module (the API and dashboard), and
    # one without an FAQ should not carry numpy and the tokenizer (~14 MB).
    import numpy as np

    from ..knowledge import embedding

    vectors = embedding.load().embed([row.text for row in rows])
    groups: list[Gap] = []
    # Each group's first question, one row per group: one matrix-vector product per
    # question (a Python loop over the groups took 7.7 s of CPU for 5,000 questions).
    centres = np.empty_like(vectors)
    for row, vector in zip(rows, vectors, strict=True):
        found = len(groups)
        scores = centres[:found] @ vector if found else None
        best = int(np.argmax(scores)) if found else -1
        if best < 0 or scores[best] < SAME_QUESTION:
            groups.append(Gap())
            centres[found] = vector
            best = found
        gap = groups[best]
        gap.texts.append(row.text)
        gap.declined += row.outcome == "decline"
        gap.clarified += row.outcome == "clarify"
        if row.wrong and row.faq_id:  # an answer marked wrong: the entry that gave it
            gap.wrong += 1
            gap.wrongly[row.faq_id] = gap.wrongly.get(row.faq_id, 0) + 1
            continue
        gap.wrong += row.wrong
        scored = [c for c in row.candidates if c["score"]]
        if scored:
            top = scored[0]["faq_id"]
            gap.nearest[top] = gap.nearest.get(top, 0) + 1
    groups.sort(key=lambda g: (-g.count, -g.wrong))
    return groups[:limit]


def _picks_as_questions(rows: list[_Row]) -> list[_Row]:
    """A "did you mean" answered with a number ("2") and marked wrong stands for the
    question the clarification was about: it takes that question's text, and the
    clarification's row (and a re-ask's, "3" of two) is not counted beside it; a re-ask
    is never counted as a question of its own. Found among
    the rows read (newest first): the conversation's latest clarification before the pick
    that was not itself a number (a re-ask), if it offered the entry picked."""
    from ..autoreply.faq import picked_number

    dropped: set[int] = set()
    asked: dict[int, str] = {}
    by_conversation: dict[str, list[_Row]] = {}
    for row in rows:
        by_conversation.setdefault(row.conversation_sid, []).append(row)
    for pick in rows:
        if not (pick.wrong and pick.outcome == "answer"
                and picked_number(pick.text) is not None):
            continue
        between = []
        for row in by_conversation[pick.conversation_sid]:  # newest first
            if row.id >= pick.id or row.id in dropped or row.outcome != "clarify":
                continue
            if picked_number(row.text) is not None:
                between.append(row.id)  # a re-ask of the same options ("3" of two)
                continue
            if any(c["faq_id"] == pick.faq_id for c in row.candidates):
                dropped.update((row.id, *between))
                asked[pick.id] = row.text
            break
    return [_Row(r.id, asked.get(r.id, r.text), r.outcome, r.candidates, r.wrong, r.faq_id,
                 r.conversation_sid) for r in rows
            if r.id not in dropped and not _reask(r, picked_number)]


def _reask(row: _Row, picked_number) -> bool:
    """The same clarification asked again after a number it did not offer ("4" of two):
    not a question of its own (the question it is about is counted already)."""
    return (row.outcome == "clarify" and not row.wrong and picked_number(row.text) is not None
            and not any(c["score"] for c in row.candidates))
