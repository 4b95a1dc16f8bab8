"""The outbox as a test reads it: the one reply, every reply's status, a lease taken as a
sender would (without Twilio's pace, unless told)."""

from __future__ import annotations

from sqlalchemy import select

from app.delivery import outbox
from app.services import services
from app.store.models import Reply


def the_reply(app) -> Reply:
    """The only reply in `app`'s database (fails if there is none, or more)."""
    with services(app).db.session() as s:
        return s.scalars(select(Reply)).one()


def statuses(app) -> list[str]:
    """Every reply's status, oldest first."""
    with services(app).db.read() as conn:
        return list(conn.scalars(select(Reply.status).order_by(Reply.id)))


def lease(app, limit: int = 8, *, expired: bool = True, pace: float = 0.0):
    """Lease for 60 s as a sender does, without Twilio's pace unless `pace` is given."""
    with services(app).db.transaction() as conn:
        return outbox.lease_due(conn, limit, 60, expired=expired, pace=pace)
