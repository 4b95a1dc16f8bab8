"""Every webhook's result counted in one place, as it is answered:

    bot_webhooks_total{event_type, outcome}   and its duration: every answer, by the
                                              Outcome's kind, else rejected (4xx) or
                                              failed (5xx)
    bot_webhook_signature_failures_total      a 403, by reason (missing, mismatch, origin)
    bot_decisions_total, bot_delivery_receipts_total
                                              what an outcome tells beyond its kind
    hourly counts (app/timeline/counters.py)  duplicates dropped and signature failures,
                                              for the operator's statistics

Prometheus's counters are app/observability/metrics.py; nothing else counts a webhook.
"""

from __future__ import annotations

import time

from flask import g

from ..errors import BadSignature, WebhookError
from ..observability import metrics
from ..pipeline.events import KNOWN_EVENTS, Event
from ..pipeline.outcome import Kind, Outcome
from ..services import services
from ..timeline.counters import DUPLICATES, SIGNATURE_FAILURES
from ..twilio import error_codes

RECEIPT_STATUSES = frozenset({"sent", "delivered", "read", "failed", "undelivered"})


class Tally:
    """Count the webhook answered in the `with` block, and the time it took: by the type
    of the verified Event the block sets (`unverified` without one) and outcome (the kind
    of the Outcome the block sets, `accepted` without one; `rejected` for a 4xx, `failed`
    otherwise)."""

    event: Event | None = None
    outcome: Outcome | None = None

    def __enter__(self) -> Tally:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            result = "rejected" if issubclass(exc_type, WebhookError) else "failed"
        else:
            result = self.outcome.kind.name.lower() if self.outcome else "accepted"
        event_type = "unverified" if self.event is None else self.event.type
        if self.event is not None and event_type not in KNOWN_EVENTS:
            event_type = "other"  # one label for all unknown names, not one per value
        metrics.webhook_handled(event_type, result, time.perf_counter() - g.started)
        if isinstance(exc, BadSignature):
            metrics.signature_failed(exc.reason)
            services().counts.add(SIGNATURE_FAILURES)
        elif exc_type is None and self.outcome is not None and self.event is not None:
            count_outcome(self.event, self.outcome)


def count_outcome(event: Event, outcome: Outcome) -> None:
    """Count what the outcome tells beyond its kind: a duplicate dropped, the auto-reply
    decision's reason, a recorded receipt's status and error code."""
    if outcome.kind is Kind.DUPLICATE:
        services().counts.add(DUPLICATES)
        return
    if outcome.reason:
        metrics.decision(outcome.reason)
    if outcome.kind is Kind.RECEIPT:
        status = event.get("Status") or ""
        code = event.get("ErrorCode") or ""
        if code and code != "0" and not (code.isascii() and code.isdigit()
                                         and int(code) in error_codes.MEANINGS):
            code = "other"  # a label per code Twilio documents, not per number sent
        metrics.delivery_status(status if status in RECEIPT_STATUSES else "other", code)
