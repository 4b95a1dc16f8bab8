"""Dashboard sessions, server side: a row per login in `admin_sessions`, checked on
every request, so a session ends for every copy of its cookie on every worker and
instance.

    start(db, token)        a new session: its random id goes in the cookie, the id's
                            SHA-256 in the database, with the token's fingerprint and
                            an expiry LIFETIME ahead (the database's clock)
    valid(db, sid, token)   the row exists, is not expired, and was made under this token
    revoke(db, sid)         logout: the row goes

The fingerprint is an HMAC of ADMIN_TOKEN under its own label, so a new token ends
every session even for a cookie signed with the new key, and the table holds neither
the token, nor the cookie's signing key, nor a usable session id.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from datetime import timedelta

from sqlalchemy import delete, insert, select

from ...store import clock
from ...store.database import Database
from ...store.models import AdminSession

LIFETIME = timedelta(hours=12)
SESSIONS = AdminSession.__table__


def fingerprint(token: str) -> str:
    return hmac.new(token.encode(), b"conversations-bot admin session fingerprint",
                    hashlib.sha256).hexdigest()


def _key(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


def start(db: Database, token: str) -> str:
    """Record a new session and return its id (for the cookie); expired rows go."""
    sid = secrets.token_urlsafe(32)
    with db.transaction() as conn:
        dialect = conn.dialect.name
        conn.execute(delete(SESSIONS).where(SESSIONS.c.expires_at <= clock.now(dialect)))
        conn.execute(insert(SESSIONS).values(
            id=_key(sid), token_fingerprint=fingerprint(token), created_at=clock.now(dialect),
            expires_at=clock.later(dialect, "lifetime")),
            {"lifetime": LIFETIME.total_seconds()})
    return sid


def valid(db: Database, sid: str | None, token: str) -> bool:
    if not sid or not isinstance(sid, str):
        return False

    def read(conn):
        return conn.execute(select(SESSIONS.c.id).where(
            SESSIONS.c.id == _key(sid), SESSIONS.c.token_fingerprint == fingerprint(token),
            SESSIONS.c.expires_at > clock.now(conn.dialect.name))).first()

    return db.run_read(read) is not None


def revoke(db: Database, sid: str | None) -> None:
    if sid and isinstance(sid, str):
        with db.transaction() as conn:
            conn.execute(delete(SESSIONS).where(SESSIONS.c.id == _key(sid)))
