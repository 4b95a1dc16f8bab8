"""Operator input (query strings, form fields, parts of URLs), checked before it reaches
a query, a redirect or a header. Each reader takes the raw text and returns a value, or
raises Refused (400) with a message that names the parameter; the API and the dashboard
read through the same functions, so they refuse alike.

    moment, period    a duration back from now (24h, at most 100 years) or an ISO time
    record_id         a row id: 1 to 2**31-1 (replies.id is INTEGER: int4 on PostgreSQL;
                      a larger number overflows SQLite's driver)
    limit             a page size, clamped to 1..maximum
    choice            one of a few words
    sid               a SID in a URL: letters and digits, as stored (SID_LENGTH)
    dashboard_path    where a form or the login sends you back: a page of /admin, never
                      another site, never a line break in a Location header
    overview_filters  the overview's state, channel, cursor and search text
"""

from __future__ import annotations

import re
from datetime import datetime
from urllib.parse import quote

from flask import Request

from ..autoreply.names import CHANNELS
from ..operator import periods
from ..store.models import SID_LENGTH, utcnow
from ..timeline.status import CONVERSATION_STATES
from .errors import Refused

MAX_ID = 2**31 - 1
_DIGITS = re.compile(r"[0-9]{1,10}")
_SID = re.compile(rf"[A-Za-z0-9]{{2,{SID_LENGTH}}}")
# A path and query as a browser sends them: printable ASCII, no space, no backslash.
_PATH = re.compile(r"[!-\[\]-~]+")
_PATH_SAFE = "/:@!$&'()*+,;=-._~"  # kept as they are when a path is percent-encoded


def bad(name: str, problem: str) -> Refused:
    """'400 Bad Request: <name> <problem>', e.g. 'limit must be a positive integer'."""
    return Refused(f"400 Bad Request: {name} {problem}")


def moment(name: str, raw: str | None) -> datetime | None:
    if not raw:
        return None
    try:
        return periods.moment(raw, utcnow())
    except ValueError as exc:
        raise Refused(f"400 Bad Request: {name}: {exc}") from None


def period(since: str | None, until: str | None, default: str) -> tuple[datetime, datetime]:
    """[since, until): `since` defaults to `default` ago, `until` to now."""
    try:
        return periods.period(since, until, default)
    except ValueError as exc:
        raise Refused(f"400 Bad Request: {exc}") from None


def record_id(name: str, raw: str | int) -> int:
    text = str(raw).strip()
    if not _DIGITS.fullmatch(text) or not 1 <= int(text) <= MAX_ID:
        raise bad(name, f"must be a positive integer up to {MAX_ID}, got {text[:40]!r}")
    return int(text)


def optional_id(name: str, raw: str | None) -> int | None:
    return None if raw is None or raw == "" else record_id(name, raw)


def limit(raw: str | None, default: int, maximum: int) -> int:
    if raw is None or raw == "":
        return default
    if not _DIGITS.fullmatch(raw) or int(raw) == 0:
        raise bad("limit", f"must be a positive integer (at most {maximum} are returned), "
                           f"got {raw[:40]!r}")
    return min(maximum, int(raw))


def choice(name: str, raw: str | None, choices: tuple[str, ...]) -> str | None:
    """One of `choices`; None when empty."""
    if not raw:
        return None
    if raw not in choices:
        raise bad(name, f"must be one of {', '.join(choices)}, got {raw[:40]!r}")
    return raw


MAX_SEARCH = 200


def overview_filters(args) -> dict:
    """The overview's filters (state, channel, before, q), read alike by the API and the
    dashboard: a bad value is a 400 naming it in both."""
    q = (args.get("q") or "").strip()
    if len(q) > MAX_SEARCH:
        raise bad("q", f"is at most {MAX_SEARCH} characters")
    return {"state": choice("state", args.get("state"), tuple(CONVERSATION_STATES)),
            "channel": choice("channel", (args.get("channel") or "").upper(),
                              tuple(sorted(CHANNELS))),
            "before": moment("before", args.get("before")), "q": q}


def sid(raw: str, name: str = "conversation SID") -> str:
    if not _SID.fullmatch(raw):
        raise bad(name, f"must be letters and digits, at most {SID_LENGTH} (CH and 32 hex "
                        f"digits), got {raw[:40]!r}")
    return raw


def dashboard_path(name: str, raw: str | None) -> str | None:
    """A page of the dashboard (path and query, percent-encoded, as `here` makes it);
    None when empty."""
    if not raw:
        return None
    page = raw == "/admin" or raw.startswith(("/admin/", "/admin?"))
    if not (page and _PATH.fullmatch(raw) and "//" not in raw):
        raise bad(name, f"must be a page of this dashboard (/admin/...), got {raw[:40]!r}")
    return raw


def here(request: Request) -> str:
    """The page asked for, as `dashboard_path` accepts it: the path percent-encoded (it
    arrives decoded), the query as the client sent it."""
    path = quote(request.path, safe=_PATH_SAFE)
    query = quote(request.query_string, safe=_PATH_SAFE + "%?")
    return f"{path}?{query}" if query else path
