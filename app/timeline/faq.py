"""The FAQ's record, read back: one message's match (`why`, the API), the questions it did
not answer grouped by similarity (`faq gaps`, the dashboard), and an operator marking a
decision wrong (the same action from the CLI, the API and the dashboard)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Connection, or_, select, update

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


def mark_wrong(conn: Connection, message_sid: str, wrong: bool = True) -> bool:
    """Mark the FAQ's decision on a message wrong (it shows in `faq gaps`), or no longer
    (`wrong=False`: an operator's slip undone); False when the message has no FAQ match
    recorded."""
    done = conn.execute(update(FAQ_MATCHES).where(FAQ_MATCHES.c.message_sid == message_sid)
                        .values(wrong_at=utcnow() if wrong else None)).rowcount
    if done:
        log.info("FAQ decision %s %s", "marked wrong" if wrong else "no longer marked wrong",
                 kv(message=message_sid))
    return bool(done)


@dataclass
class Gap:
    """Questions that read alike, and what the bot did with them."""

    texts: list[str] = field(default_factory=list)
    declined: int = 0
    clarified: int = 0
    wrong: int = 0
    nearest: dict[str, int] = field(default_factory=dict)  # best candidate -> times

    @property
    def count(self) -> int:
        return len(self.texts)

    def as_dict(self) -> dict:
        nearest = max(self.nearest, key=self.nearest.get) if self.nearest else None
        return {"count": self.count, "declined": self.declined, "clarified": self.clarified,
                "marked_wrong": self.wrong, "nearest_entry": nearest,
                "examples": self.texts[:3]}


def gaps(conn: Connection, since: datetime, limit: int = 20) -> list[Gap]:
    """Declined and clarified questions since `since` (naive UTC), and answers marked wrong,
    grouped by meaning (greedily, each to the first group it is SAME_QUESTION close to),
    largest group first."""
    rows = conn.execute(
        select(FAQ_MATCHES.c.text, FAQ_MATCHES.c.outcome, FAQ_MATCHES.c.candidates,
               FAQ_MATCHES.c.wrong_at, FAQ_MATCHES.c.faq_id,
               FAQ_MATCHES.c.conversation_sid, FAQ_MATCHES.c.created_at)
        .where(FAQ_MATCHES.c.created_at >= since,
               or_(FAQ_MATCHES.c.outcome != "answer", FAQ_MATCHES.c.wrong_at.is_not(None)))
        .order_by(FAQ_MATCHES.c.created_at.desc()).limit(MAX_GAP_ROWS)).all()
    if not rows:
        return []
    rows = [_asked(conn, row) for row in rows]
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
        gap.wrong += row.wrong_at is not None
        gap.declined += row.outcome == "decline"
        gap.clarified += row.outcome == "clarify"
        # An answer marked wrong: the entry that answered; else the best candidate.
        candidates = json.loads(row.candidates or "[]")
        top = row.faq_id or (candidates[0]["faq_id"] if candidates else None)
        if top:
            gap.nearest[top] = gap.nearest.get(top, 0) + 1
    groups.sort(key=lambda g: (-g.count, -g.wrong))
    return groups[:limit]


@dataclass(frozen=True)
class _Row:
    text: str
    outcome: str
    candidates: str
    wrong_at: datetime | None
    faq_id: str | None


def _asked(conn: Connection, row) -> _Row:
    """The row as `gaps` groups it. A clarification's pick ("2") marked wrong is grouped
    by the question the customer asked before it, the one the clarification was about
    (a pick's candidates are the options offered, each scored 0)."""
    text = row.text
    candidates = json.loads(row.candidates or "[]")
    if row.outcome == "answer" and candidates and all(c["score"] == 0 for c in candidates):
        asked = conn.execute(
            select(FAQ_MATCHES.c.text).where(
                FAQ_MATCHES.c.conversation_sid == row.conversation_sid,
                FAQ_MATCHES.c.outcome == "clarify", FAQ_MATCHES.c.created_at <= row.created_at)
            .order_by(FAQ_MATCHES.c.created_at.desc(), FAQ_MATCHES.c.id.desc()).limit(1)).scalar()
        text = asked or text
    return _Row(text, row.outcome, row.candidates, row.wrong_at, row.faq_id)
