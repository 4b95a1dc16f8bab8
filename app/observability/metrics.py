"""Prometheus metrics: what the server counts, and the calls that count it.

The sender calls, once per reply attempt that settles something:

    metrics.reply_sent(latency_seconds)   # Twilio accepted it; latency = from the inbound
                                          # message's webhook (the reply's created_at) to now
    metrics.reply_sent(s, dry_run=True)   # a dry-run server logged it: not sent, counted
                                          # apart (bot_replies_dry_run_total)
    metrics.reply_failed(error_code)      # failed for good (Twilio's code, or None)
    metrics.reply_retried()               # a transient failure, another attempt is due

The webhook's tally (app/web/tally.py, the one place a webhook is counted) calls
`webhook_handled`, `signature_failed`, `decision` and `delivery_status`. Queue depth, the oldest pending reply and the senders' concurrency
are not counted here: `collectors.DatabaseCollector` reads them from the database at
scrape time, so they are right whichever process sends.

Every call is cheap and never raises into the caller's path: an increment is a float
in memory, or under gunicorn (PROMETHEUS_MULTIPROC_DIR, see `multiprocess.py`) a
write into this process's memory-mapped file, which the scraping worker adds up with
every other worker's. The metric objects are built on first use in each process (and
again after a fork), so whether they share files follows the environment of the
process that counts, not of whoever imported this module first (gunicorn's master,
with --preload).
"""

from __future__ import annotations

import logging
import os
import threading

from prometheus_client import CollectorRegistry, Counter, Histogram, values

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# Ack times: Twilio waits 5 s; a healthy webhook takes a few milliseconds.
WEBHOOK_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10)
# Reply latency: seconds when all is well, minutes to an hour when retries back off.
REPLY_BUCKETS = (.1, .25, .5, 1, 2.5, 5, 10, 30, 60, 120, 300, 900, 3600)


class _Metrics:
    """The metric objects of one process."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.multiproc_dir = os.environ.get(MULTIPROC_ENV) or None
        # prometheus_client picks per-process or shared-file values when it is imported;
        # pick again for this process's environment (its module keeps the choice there).
        values.ValueClass = values.get_value_class()
        # Multiprocess: the scrape reads the files, no registry. Otherwise a private
        # registry, so that a re-build after fork never clashes with the old objects.
        registry = None if self.multiproc_dir else CollectorRegistry()
        self.registry = registry
        self.webhooks = Counter(
            "bot_webhooks", "Webhooks answered, by event type and outcome (reply_queued, "
            "ignored, receipt, duplicate, accepted, rejected, failed).",
            ["event_type", "outcome"], registry=registry)
        self.webhook_seconds = Histogram(
            "bot_webhook_duration_seconds", "Time to answer a post-event webhook.",
            buckets=WEBHOOK_BUCKETS, registry=registry)
        self.signature_failures = Counter(
            "bot_webhook_signature_failures", "Webhooks refused with 403, by reason "
            "(missing, mismatch, origin).", ["reason"], registry=registry)
        self.decisions = Counter(
            "bot_decisions", "Auto-reply decisions on customer messages, by reason code.",
            ["reason"], registry=registry)
        self.delivery = Counter(
            "bot_delivery_receipts", "Delivery receipts recorded, by status and ErrorCode "
            "(empty: none).", ["status", "error_code"], registry=registry)
        self.replies_sent = Counter(
            "bot_replies_sent", "Replies Twilio accepted.", registry=registry)
        self.replies_dry_run = Counter(
            "bot_replies_dry_run", "Replies a dry-run server logged instead of sending "
            "(never counted as sent).", registry=registry)
        self.replies_failed = Counter(
            "bot_replies_failed", "Replies that failed for good, by Twilio error code "
            "(empty: none).", ["error_code"], registry=registry)
        self.replies_retried = Counter(
            "bot_replies_retried", "Reply attempts that failed transiently and are retried.",
            registry=registry)
        self.reply_seconds = Histogram(
            "bot_reply_latency_seconds", "From the customer's webhook to the reply "
            "accepted by Twilio.", buckets=REPLY_BUCKETS, registry=registry)


_current: _Metrics | None = None
_lock = threading.Lock()


def _metrics() -> _Metrics:
    global _current
    current = _current
    if current is not None:
        return current
    with _lock:
        if _current is None:
            _current = _Metrics()
        return _current


def _forget_after_fork() -> None:
    global _current, _lock
    _current = None
    _lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)


def process_registry() -> CollectorRegistry | None:
    """This process's registry, or None in multiprocess mode (read the files instead)."""
    return _metrics().registry


def multiproc_dir() -> str | None:
    """The folder of shared metric files this process writes, or None."""
    return _metrics().multiproc_dir


def _safely(count):
    """Metrics never break what they measure: a failure is logged once per process."""
    def call(*args, **kwargs):
        try:
            count(*args, **kwargs)
        except Exception:  # noqa: BLE001 - a full disk must not fail a webhook
            if not getattr(call, "failed", False):
                call.failed = True
                log.exception("metrics: %s failed (logged once)", count.__name__)
    call.__name__ = count.__name__
    call.__doc__ = count.__doc__
    return call


def _code(error_code) -> str:
    return "" if error_code in (None, "", 0, "0") else str(error_code)


# --- the sender's calls --------------------------------------------------------------

@_safely
def reply_sent(latency_seconds: float, *, dry_run: bool = False) -> None:
    """Count a reply Twilio accepted; `latency_seconds` from its webhook to now. A
    dry-run reply (logged, not sent) is counted apart, and has no latency to Twilio."""
    m = _metrics()
    if dry_run:
        m.replies_dry_run.inc()
        return
    m.replies_sent.inc()
    m.reply_seconds.observe(max(0.0, latency_seconds))


@_safely
def reply_failed(error_code: int | None) -> None:
    """Count a reply that failed for good, with Twilio's error code (None: no code)."""
    _metrics().replies_failed.labels(_code(error_code)).inc()


@_safely
def reply_retried() -> None:
    """Count an attempt that failed transiently (429, 5xx, timeout) and will be retried."""
    _metrics().replies_retried.inc()


# --- the request path's calls --------------------------------------------------------

@_safely
def webhook_handled(event_type: str, outcome: str, seconds: float | None = None) -> None:
    """Count one webhook answered: `outcome` is an Outcome kind's name in lower case
    (reply_queued, duplicate, ...), or rejected (4xx) / failed (5xx)."""
    m = _metrics()
    m.webhooks.labels(event_type, outcome).inc()
    if seconds is not None:
        m.webhook_seconds.observe(seconds)


@_safely
def signature_failed(reason: str) -> None:
    """Count a webhook refused with 403: missing, mismatch or origin."""
    _metrics().signature_failures.labels(reason).inc()


@_safely
def decision(reason: str) -> None:
    """Count an auto-reply decision by its reason code (REPLY, COOLDOWN, ...)."""
    _metrics().decisions.labels(reason).inc()


@_safely
def delivery_status(status: str, error_code: str | int | None) -> None:
    """Count a delivery receipt recorded, by its Status and ErrorCode."""
    _metrics().delivery.labels(status, _code(error_code)).inc()
