"""X-Twilio-Signature: which URLs Twilio may have signed, and whether one matches.

Twilio signs the full URL it requested (scheme, host, port, path, raw query) followed
by every POST parameter; twilio's RequestValidator does the HMAC and the constant-time
comparison. This module decides *which* URLs to check, and fails closed.

The origin (scheme, host, port) is never taken from the request alone: the Host header
(or X-Forwarded-Host through ProxyFix) is whatever the caller wrote, so another app's
webhook, signed for its own host by the same Twilio account, would validate here if
replayed with that Host. The origins Twilio calls are configured (PUBLIC_BASE_URL);
without any, only loopback origins are served, for local runs and curl.
https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from urllib.parse import quote, urlparse, urlsplit

from flask import Request
from twilio.request_validator import RequestValidator, add_port, compare, remove_port
from werkzeug.datastructures import MultiDict

from ..errors import BadSignature
from ..logs import without_query

HEADER = "X-Twilio-Signature"
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


class Validator(RequestValidator):
    """twilio's RequestValidator, one HMAC per webhook instead of two.

    Twilio signs some URLs with the default port (:443) and some without, so twilio's
    `validate` computes the signature both ways on every request. This one checks the
    form the URL is written in first and the other form only when that does not match:
    the same answer (the same two candidate URLs, twilio's own `compute_signature` and
    constant-time `compare`), half the work for a good webhook. A body signed by hash
    (JSON, `bodySHA256`) goes to twilio's own `validate` unchanged.
    """

    def validate(self, uri, params, signature, algorithm=None):
        if isinstance(params, str):
            return super().validate(uri, params, signature, algorithm)
        parsed = urlparse(uri)
        as_written_first = (add_port, remove_port) if parsed.port else (remove_port, add_port)
        try:
            return any(compare(self.compute_signature(form(parsed), params or {}, algorithm),
                               signature) for form in as_written_first)
        except ValueError:  # an algorithm twilio does not know: its validate says so, False
            return super().validate(uri, params, signature, algorithm)


class UnservedOrigin(BadSignature):
    """The request names an origin that is neither configured nor loopback (403)."""

    def __init__(self, origin: str, host: str):
        super().__init__(f"origin {origin} is not served here", "origin")
        self.origin = origin
        self.host = host


def raw_path(request: Request) -> str:
    """Return the path and query exactly as the client sent them (not decoded)."""
    environ = request.environ
    raw = environ.get("RAW_URI") or environ.get("REQUEST_URI")
    if raw and not raw.startswith("/"):  # absolute-form request line
        parts = urlsplit(raw)
        raw = parts.path + (f"?{parts.query}" if parts.query else "")
    if not raw:
        query = environ.get("QUERY_STRING", "")
        raw = quote(environ.get("PATH_INFO", "")) + (f"?{query}" if query else "")
    # A prefix set by a proxy (X-Forwarded-Prefix via ProxyFix) is part of the public URL.
    prefix = quote(request.script_root)
    return raw if raw.startswith(prefix + "/") else prefix + raw


def hostname(host: str) -> str | None:
    """Return the lower-case host name of a Host header value, without port or brackets
    (werkzeug has already emptied a Host that is not a valid host[:port])."""
    try:
        return urlsplit("//" + host).hostname
    except ValueError:  # e.g. an unclosed IPv6 bracket
        return None


def signed_urls(request: Request, public_base_urls: Sequence[str]) -> list[str]:
    """Return the URLs Twilio may have signed for this request, the likeliest first.

    One configured origin is checked whatever the Host (proxies that rewrite Host keep
    working); of several, the one whose host is the request's, else each in turn. With
    none, the request's own origin (after ProxyFix) if it is loopback; otherwise raise
    UnservedOrigin.
    """
    path = raw_path(request)
    if len(public_base_urls) == 1:
        return [public_base_urls[0] + path]
    host = hostname(request.host)
    if public_base_urls:
        same_host = [url for url in public_base_urls if urlsplit(url).hostname == host]
        return [url + path for url in same_host or public_base_urls]
    origin = f"{request.scheme}://{request.host}"
    if host not in LOOPBACK_HOSTS:
        raise UnservedOrigin(origin, request.host)
    return [origin + path]


def verify(
    validator: RequestValidator, urls: Sequence[str], params: MultiDict, signature: str | None
) -> str:
    """Return the URL `signature` is Twilio's for (with `params`), or raise BadSignature
    with its reason (missing, mismatch: what the webhook's tally counts)."""
    if not signature:
        raise BadSignature(f"missing {HEADER} header", "missing")
    for url in urls:
        if validator.validate(url, params, signature):
            return url
    raise BadSignature(f"{HEADER} does not match", "mismatch")


def diagnose(validator: RequestValidator, url: str, params: MultiDict, signature: str) -> str:
    """Explain a mismatch: name a URL the signature *would* match, if any (never accepted)."""
    parts = urlsplit(url)
    candidates = []
    other_scheme = "https" if parts.scheme == "http" else "http"
    candidates.append((parts._replace(scheme=other_scheme).geturl(), "scheme"))
    for alt_path in (parts.path.rstrip("/"), parts.path + "/"):
        if alt_path and alt_path != parts.path:
            candidates.append((parts._replace(path=alt_path).geturl(), "trailing slash"))
    for candidate, what in candidates:
        if validator.validate(candidate, params, signature):
            return (
                f"it matches {without_query(candidate)} instead ({what} differs): set "
                "PUBLIC_BASE_URL to the origin(s) Twilio calls, comma-separated (or, for "
                "a loopback origin behind a proxy, PROXY_COUNT to the number of proxies)"
            )
    return (
        "no nearby URL matches either: check that TWILIO_AUTH_TOKEN is the primary "
        "Auth Token of the account that sends the webhooks, and the webhook URL "
        "configured in Twilio"
    )


class Hints:
    """Decide when a rejection may be explained: a hint costs a few more HMACs over the
    whole body, so rejecting junk must not cost more than accepting a webhook.

    Hints are computed only for bodies up to `max_body_bytes`, and at most once per
    `interval` seconds (one Hints per app, so per process); otherwise the hint says why
    it was skipped.
    """

    def __init__(self, *, max_body_bytes: int = 16 * 1024, interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic):
        self.max_body_bytes = max_body_bytes
        self.interval = interval
        self.clock = clock
        self._next: float | None = None
        self._lock = threading.Lock()

    def explain(self, validator: RequestValidator, url: str, params: MultiDict,
                signature: str, body_bytes: int) -> str:
        if body_bytes > self.max_body_bytes:
            return (f"skipped: the body is {body_bytes} bytes, hints are computed only "
                    f"up to {self.max_body_bytes} bytes")
        with self._lock:
            now = self.clock()
            if self._next is not None and now < self._next:
                return f"skipped: one hint per {self.interval:g} s per process"
            self._next = now + self.interval
        return diagnose(validator, url, params, signature)
