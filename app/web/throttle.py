"""Wrong ADMIN_TOKENs, counted in the database per client address and overall, so the
limits hold across workers and instances. One throttle for every door that takes the
token: the dashboard's login, the API's and /metrics' bearer token.

    per address  PER_ADDRESS (10) wrong tokens within PERIOD_SECONDS (5 minutes) of its
                 first: then 429 with Retry-After until those 5 minutes are over
    overall      past OVERALL (100) wrong tokens from all addresses within 5 minutes,
                 an address gets one wrong try, then 429 for the rest of the period; an
                 address that has not failed still gets in with the right token
    right token  one indexed read; nothing written, nothing waited for

A throttled request is refused before its token is compared (the right one too) and is
not counted. The address is the one the app sees after ProxyFix (PROXY_COUNT; behind
a proxy it does not count, every client is the proxy); an IPv6 client counts by its
/64, which one host holds whole. A lock-out is logged once (WARNING, never the token).
Times are the database's (app/store/clock.py): every host agrees on the period.

When the database does not answer, attempts go through uncounted: a 32-character token
is not guessed during an outage, and /metrics must still report it.
"""

from __future__ import annotations

import ipaddress
import logging
import math
from dataclasses import dataclass

from sqlalchemy import Connection, case, delete, select
from sqlalchemy.exc import SQLAlchemyError

from ..logs import kv
from ..store import clock
from ..store.database import Database, DatabaseUnavailable, dialect_insert
from ..store.models import AuthFailure
from .errors import Refused

log = logging.getLogger(__name__)
PER_ADDRESS = 10
OVERALL = 100
PERIOD_SECONDS = 300
EVERYONE = "*"
FAILURES = AuthFailure.__table__
_PERIOD = {"period_ago": -PERIOD_SECONDS}


@dataclass(frozen=True)
class Tally:
    """Wrong tokens in the current period: this address's and everyone's, and the
    seconds until each period ends."""

    mine: int = 0
    everyone: int = 0
    mine_left: float = 0.0
    everyone_left: float = 0.0

    @property
    def locked(self) -> bool:
        return self.mine >= PER_ADDRESS or (self.everyone >= OVERALL and self.mine >= 1)

    @property
    def retry_after(self) -> int:
        """Seconds until this address may try again."""
        left = self.mine_left if self.mine >= PER_ADDRESS else min(self.mine_left,
                                                                   self.everyone_left)
        return max(1, math.ceil(left))

    @classmethod
    def of(cls, rows, key: str) -> Tally:
        counts = {row.key: (row.failures, (row.first_at - row.now).total_seconds()
                            + PERIOD_SECONDS) for row in rows}
        mine, mine_left = counts.get(key, (0, 0.0))
        everyone, everyone_left = counts.get(EVERYONE, (0, 0.0))
        return cls(mine, everyone, mine_left, everyone_left)


def client_key(address: str | None) -> str:
    """The address a client is counted by: IPv4 as it is, IPv6 by its /64."""
    try:
        ip = ipaddress.ip_address(address or "")
    except ValueError:
        return (address or "unknown")[:64]
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.version == 6:
        return str(ipaddress.ip_network(f"{ip}/64", strict=False))
    return str(ip)


def admit(db: Database, address: str | None) -> None:
    """Return when this address may try a token now; raise Refused (429) otherwise."""
    key = client_key(address)
    try:
        tally = db.run_read(lambda conn: Tally.of(_current(conn, key), key))
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        log.warning("token throttle skipped %s", kv(reason=exc.__class__.__name__))
        return
    if tally.locked:
        raise _too_many(tally)


def failed(db: Database, address: str | None, door: str) -> None:
    """Count a wrong token from this address; raise Refused (429) when the address was
    locked out by then (another worker counted first), log when this one locks it."""
    key = client_key(address)
    try:
        with db.transaction() as conn:
            after = Tally.of(_count(conn, key), key)
            if after.everyone == 1:  # a new period: the old counts are done with
                conn.execute(delete(FAILURES).where(
                    FAILURES.c.first_at <= clock.later(conn.dialect.name, "period_ago")),
                    _PERIOD)
    except (SQLAlchemyError, DatabaseUnavailable) as exc:
        log.warning("token throttle skipped %s", kv(reason=exc.__class__.__name__))
        return
    before = Tally(after.mine - 1, after.everyone - 1, after.mine_left, after.everyone_left)
    if before.locked:
        raise _too_many(after)
    within = f"{PERIOD_SECONDS}s"
    if after.mine == PER_ADDRESS:
        log.warning("token attempts locked out %s", kv(
            address=key, failures=PER_ADDRESS, within=within, door=door,
            retry_after=after.retry_after))
    if after.everyone == OVERALL:
        log.warning("token attempts locked out %s", kv(
            address="everyone", failures=OVERALL, within=within, door=door,
            retry_after=math.ceil(after.everyone_left),
            note="each address now gets one wrong try"))


def _current(conn: Connection, key: str):
    dialect = conn.dialect.name
    return conn.execute(
        select(FAILURES.c.key, FAILURES.c.failures, FAILURES.c.first_at,
               clock.now(dialect).label("now"))
        .where(FAILURES.c.key.in_((key, EVERYONE)),
               FAILURES.c.first_at > clock.later(dialect, "period_ago")), _PERIOD).all()


def _count(conn: Connection, key: str):
    """One statement: add one to both counts, each starting again when its period is
    over; return both rows."""
    dialect = conn.dialect.name
    now = clock.now(dialect)
    over = FAILURES.c.first_at <= clock.later(dialect, "period_ago")
    stmt = dialect_insert(dialect)(FAILURES).values([
        {"key": key, "failures": 1, "first_at": now},
        {"key": EVERYONE, "failures": 1, "first_at": now}])
    stmt = stmt.on_conflict_do_update(index_elements=["key"], set_={
        "failures": case((over, 1), else_=FAILURES.c.failures + 1),
        "first_at": case((over, now), else_=FAILURES.c.first_at)})
    return conn.execute(stmt.returning(FAILURES.c.key, FAILURES.c.failures,
                                       FAILURES.c.first_at, now.label("now")), _PERIOD).all()


def _too_many(tally: Tally) -> Refused:
    seconds = tally.retry_after
    return Refused(f"429 Too Many Requests: too many wrong tokens (ADMIN_TOKEN); try again "
                   f"in {seconds} s", 429, {"Retry-After": str(seconds)})
