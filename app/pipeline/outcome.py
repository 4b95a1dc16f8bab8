"""Outcome: what the server did with an event, as a value (a kind and its detail).

Code compares kinds; people read the rendering, which is the same in the
`X-Webhook-Outcome` header, the event's log line and the stored claim.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from enum import StrEnum

from ..logs import printable


class Kind(StrEnum):
    REPLY_QUEUED = "reply queued"  # a reply is in the outbox
    IGNORED = "ignored"  # handled, deliberately no reply (detail: why)
    DEFERRED = "answer deferred"  # the reply is composed after the ack (app/compose/)
    RECEIPT = "receipt"  # a delivery receipt recorded (detail: its status)
    DUPLICATE = "duplicate"  # claimed before: nothing done again
    ACCEPTED = "accepted"  # no handler for this event type: acknowledged only


@dataclass(frozen=True)
class Outcome:
    kind: Kind
    detail: str | None = None
    notes: tuple[str, ...] = ()  # what only the write could tell (e.g. a receipt kept)
    reason: str | None = None  # an auto-reply decision's reason code (autoreply.Reason name)
    rule: str | None = None  # the rule that chose the reply

    def with_notes(self, notes) -> Outcome:
        notes = tuple(notes)
        return replace(self, notes=self.notes + notes) if notes else self

    def __str__(self) -> str:
        text = self.kind.value
        if self.detail:
            text += (" " if self.kind is Kind.RECEIPT else ": ") + self.detail
        return "; ".join((text, *self.notes))

    def header(self) -> str:
        """The rendering as a safe HTTP header value (ASCII, no control characters)."""
        return printable(str(self))


def combine(outcomes: list[Outcome]) -> Outcome:
    """One outcome for an event several handlers decided on: the first, noting the rest."""
    first, *rest = outcomes
    return first.with_notes(str(o) for o in rest)


DUPLICATE = Outcome(Kind.DUPLICATE)
ACCEPTED = Outcome(Kind.ACCEPTED)
