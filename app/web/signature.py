"""X-Twilio-Signature: which URL Twilio signed, and whether the signature matches it.

Twilio signs the full URL it requested (scheme, host, port, path, raw query) followed
by every POST parameter; twilio's RequestValidator does the HMAC and the constant-time
comparison. This module only decides *which* URL to check and fails closed.
https://www.twilio.com/docs/usage/webhooks/webhooks-security
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from flask import Request
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from ..errors import BadSignature

HEADER = "X-Twilio-Signature"


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


def signed_url(request: Request, public_base_url: str | None) -> str:
    """Return the URL Twilio must have signed for this request."""
    if public_base_url:
        return public_base_url + raw_path(request)
    return f"{request.scheme}://{request.host}{raw_path(request)}"


def verify(
    validator: RequestValidator, url: str, params: MultiDict, signature: str | None
) -> None:
    """Raise BadSignature unless `signature` is Twilio's for `url` and `params`."""
    if not signature:
        raise BadSignature(f"missing {HEADER} header")
    if not validator.validate(url, params, signature):
        raise BadSignature(f"{HEADER} does not match")


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
                f"it matches {candidate} instead ({what} differs): set PUBLIC_BASE_URL "
                "to the public origin Twilio calls, or PROXY_COUNT to the number of "
                "proxies in front of the app"
            )
    return (
        "no nearby URL matches either: check that TWILIO_AUTH_TOKEN is the primary "
        "Auth Token of the account that sends the webhooks, and the webhook URL "
        "configured in Twilio"
    )
