"""What can go wrong with a webhook, as exceptions; `web/errors.py` turns them into HTTP.

    WebhookError            -> its .status, body: one plain-text line
     +-- BadSignature       -> 403  (missing or wrong X-Twilio-Signature, or an origin
     |                               this server does not serve)
     +-- BadRequest         -> 400  (malformed form, no EventType)
     |    +-- MissingField  -> 400  (a known event without a usable value of a field
     |                               its handler needs: absent or malformed)
     +-- UnsupportedMedia   -> 415  (not application/x-www-form-urlencoded)
     +-- TooLarge           -> 413  (a body over WEBHOOK_MAX_BYTES, chunked or not)
"""

from __future__ import annotations


class WebhookError(Exception):
    status = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class BadSignature(WebhookError):
    """`reason` says which, for the counters: missing, mismatch, or origin."""

    status = 403

    def __init__(self, message: str, reason: str = "mismatch"):
        super().__init__(message)
        self.reason = reason


class BadRequest(WebhookError):
    status = 400


class UnsupportedMedia(WebhookError):
    status = 415


class TooLarge(WebhookError):
    status = 413


class MissingField(BadRequest):
    def __init__(self, event_type: str, field: str, problem: str | None = None):
        super().__init__(f"{event_type} has a malformed required field {field}: {problem}"
                         if problem else f"{event_type} is missing the required field {field}")
        self.field = field
