"""ADMIN_TOKEN, checked in one place for every door that takes it: the API's and
/metrics' bearer token, and the dashboard's login. Throttled per address (throttle.py),
compared in constant time, never logged.

    require(door)          a bearer token on this request, or Refused (401, 429)
    refusal(sent, door)    None when `sent` is the token, else why not (the login's
                           check: it answers with a form, not a 401)
"""

from __future__ import annotations

import hmac
import logging

from flask import request

from ..logs import kv
from ..services import services
from . import throttle
from .errors import Refused

log = logging.getLogger(__name__)


def refusal(sent: str | None, door: str) -> str | None:
    """None when `sent` is ADMIN_TOKEN; else the reason ('no bearer token' when None was
    sent, 'wrong token'). Raise Refused (429) first when this address is throttled; only
    a wrong token counts against it: no token at all is not a guess."""
    bot = services()
    address = request.remote_addr
    throttle.admit(bot.db, address)
    if sent is None:
        return "no bearer token"
    if hmac.compare_digest(sent.encode(), bot.settings.web.admin_token.encode()):
        return None
    throttle.failed(bot.db, address, door)
    return "wrong token"


def require(door: str) -> None:
    """Return when the request carries `Authorization: Bearer <ADMIN_TOKEN>`; raise Refused
    otherwise: 401 (WWW-Authenticate names `door` as the realm), or 429 when throttled."""
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    reason = refusal(sent.strip() if scheme.lower() == "bearer" else None, door)
    if reason is None:
        return
    log.warning("%s request refused %s", door, kv(reason=reason, method=request.method,
                                                  path=request.path,
                                                  remote=request.remote_addr))
    raise Refused(f"401 Unauthorized: {reason} (send Authorization: Bearer <ADMIN_TOKEN>)",
                  401, {"WWW-Authenticate": f'Bearer realm="{door}"'})
