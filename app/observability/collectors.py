"""What the database knows, read at scrape time: the outbox's backlog and the senders.

Counted nowhere else because no one process sees it: replies are queued by every web
worker and sent by any sender. Three short reads on a pooled connection, each on an index:

    count and oldest created_at, status = queued       ix_replies_due (status, ...)
    the same, status = sending                          ix_replies_due
    live senders (heartbeat within SEND_LEASE)          ix_senders_heartbeat_at

The cost grows with the backlog (an index range over the pending rows), not with the
table. If the database does not answer, the scrape still succeeds, with
`bot_database_up 0` and none of these series. Which senders are live is the delivery
layer's to say: the app hands its reader in (`senders`, delivery/registry.py's `live`),
so this layer imports nothing above the store.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Protocol

from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import Connection, func, select

from ..store import clock
from ..store.database import Database
from ..store.models import Reply, ReplyStatus

log = logging.getLogger(__name__)
PENDING = (ReplyStatus.QUEUED, ReplyStatus.SENDING)
REPLIES = Reply.__table__


class SenderLoad(Protocol):
    """What the gauges read of one live sender."""

    concurrency: int
    in_flight: int


LiveSenders = Callable[[Connection], Iterable[SenderLoad]]


class DatabaseCollector:
    """A prometheus_client collector of the outbox and sender gauges."""

    def __init__(self, db: Database, senders: LiveSenders):
        self.db = db
        self.senders = senders  # the live senders, read on the scrape's connection

    def collect(self):
        up = GaugeMetricFamily("bot_database_up", "1 if the scrape could read the database.")
        try:
            with self.db.read() as conn:
                pending, oldest_age, senders = self._read(conn)
        except Exception as exc:  # noqa: BLE001 - a scrape reports the database down
            log.warning("metrics: database not read: %s", exc.__class__.__name__)
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        yield up
        depth = GaugeMetricFamily("bot_replies_pending", "Replies waiting to be sent "
                                  "(queued) or being sent (sending).", labels=["status"])
        for status in PENDING:
            depth.add_metric([status.value], pending.get(status.value, 0))
        yield depth
        yield GaugeMetricFamily(
            "bot_replies_oldest_pending_age_seconds", "Age of the oldest queued or sending "
            "reply (0: none).", value=oldest_age)
        live, concurrency, in_flight = senders
        yield GaugeMetricFamily("bot_senders_live", "Sender processes with a heartbeat "
                                "within SEND_LEASE.", value=live)
        yield GaugeMetricFamily("bot_sender_concurrency", "Replies the live senders may "
                                "have in flight now (their adaptive limits, summed).",
                                value=concurrency)
        yield GaugeMetricFamily("bot_sender_in_flight", "Replies the live senders have "
                                "in flight (summed).", value=in_flight)

    def _read(self, conn):
        dialect = conn.dialect.name
        now = clock.now(dialect)
        # One status per query, as the outbox does: each an index range on ix_replies_due
        # (an IN may be planned as a scan of the table once it has statistics).
        rows = {status.value: conn.execute(
            select(func.count(), func.min(REPLIES.c.created_at))
            .where(REPLIES.c.status == status.value)).one() for status in PENDING}
        pending = {status: count for status, (count, _) in rows.items()}
        oldest = min((first for _, first in rows.values() if first is not None), default=None)
        db_now = conn.execute(select(now)).scalar()
        live = list(self.senders(conn))
        return pending, _age(db_now, oldest), (len(live), sum(s.concurrency for s in live),
                                               sum(s.in_flight for s in live))


def _age(now, oldest: datetime | None) -> float:
    """Seconds from `oldest` to the database's `now` (both naive UTC), never negative."""
    if oldest is None or now is None:
        return 0.0
    if isinstance(now, str):  # SQLite hands back the text of an aggregate expression
        now = datetime.fromisoformat(now[:26])
    return max(0.0, (now - oldest).total_seconds())
