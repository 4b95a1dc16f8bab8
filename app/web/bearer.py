"""ADMIN_TOKEN as a bearer token (/api/ and /metrics): throttled, compared in constant
time, a refusal logged with its reason and never the token."""

from __future__ import annotations

import hmac
import logging

from flask import request

from ..logs import kv
from ..services import services
from . import throttle
from .errors import Refused

log = logging.getLogger(__name__)


def require(token: str, door: str) -> None:
    """Return when the request carries `Authorization: Bearer <token>`; raise Refused
    otherwise: 401 (WWW-Authenticate names `door` as the realm), or 429 when throttled.
    Only a wrong token counts against the client: no token at all is not a guess."""
    db, address = services().db, request.remote_addr
    throttle.admit(db, address)
    scheme, _, sent = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer":
        reason = "no bearer token"
    elif hmac.compare_digest(sent.strip().encode(), token.encode()):
        return
    else:
        reason = "wrong token"
        throttle.failed(db, address, door)
    log.warning("%s request refused %s", door, kv(reason=reason, method=request.method,
                                                  path=request.path, remote=address))
    raise Refused(f"401 Unauthorized: {reason} (send Authorization: Bearer <ADMIN_TOKEN>)",
                  401, {"WWW-Authenticate": f'Bearer realm="{door}"'})
