"""The parameters Twilio sends that the server reads, stores or puts in a URL, and what a
usable value of each looks like.

A value that fails its check is treated as absent, with a note (`ParticipantSid
ignored: not MB + 32 hex digits`) in the event's outcome and log line, never an
exception: an event whose handler needs it (Router.register `requires`) is answered
400 naming it, the others go on without it. Parameters not listed are not checked (Twilio adds
new ones without notice); a NUL character in any parameter is refused earlier
(events.py). Checks take constant or linear time and compile nothing per request.
https://www.twilio.com/docs/conversations/conversations-webhooks
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

from .. import formats
from ..store.models import AUTHOR_LENGTH, CHANNEL_LENGTH, STATUS_LENGTH

Check = Callable[[str], "str | None"]  # the problem with a (non-empty) value; None: usable


def sid(prefix: str) -> Check:
    pattern, problem = formats.sid_pattern(prefix), f"not {prefix} + 32 hex digits"

    def check(value: str) -> str | None:
        return None if pattern.fullmatch(value) else problem
    return check


def any_sid(value: str) -> str | None:
    # A channel's own message SID: SM/MM for SMS and MMS, WA... for WhatsApp, more to come.
    return None if formats.is_any_sid(value) else "not a SID (2 capitals + 32 hex digits)"


def time(value: str) -> str | None:
    return None if formats.parse_time(value) else "not an ISO 8601 time in 1970-2999"


def integer(value: str) -> str | None:
    return None if formats.parse_int(value) is not None else \
        f"not an integer in 0..{formats.INT32_MAX}"


def json_text(value: str) -> str | None:
    try:
        formats.load_json(value)
    except ValueError:
        return f"not JSON (or nested deeper than {formats.MAX_JSON_DEPTH} levels)"
    return None


_MEDIA_SID_KEYS = ("Sid", "MediaSid", "sid", "media_sid")  # casing unconfirmed: tolerant


def media(value: str) -> str | None:
    try:
        items = formats.load_json(value)
    except ValueError:
        items = None
    if not isinstance(items, list):
        return "not a JSON array"
    for item in items:
        found = [item[k] for k in _MEDIA_SID_KEYS if k in item] if isinstance(item, dict) else []
        if not all(isinstance(s, str) and formats.is_sid(s, "ME") for s in found):
            return "holds a media SID that is not an ME SID"
    return None


def fits(limit: int, stored_as: Callable[[str], str] = str) -> Check:
    """Text its handler stores `stored_as` it (stripped, upper case...), in a column of
    `limit` characters: 'ß'.upper() is 'SS', 'İ'.lower() two characters."""
    too_long = f"longer than {limit} characters as stored"

    def check(value: str) -> str | None:
        stored = stored_as(value)
        return None if 0 < len(stored) <= limit else too_long if stored else "blank"
    return check


def _status(value: str) -> str:
    return value.strip().lower()  # as app/handlers/receipts.py stores it


CHECKS: Mapping[str, Check] = {
    # SIDs: some go into the REST API's URLs, all into the database.
    "AccountSid": sid("AC"), "ChatServiceSid": sid("IS"), "ConversationSid": sid("CH"),
    "MessageSid": sid("IM"), "MessagingServiceSid": sid("MG"), "ParticipantSid": sid("MB"),
    "DeliveryReceiptSid": sid("DY"), "UserSid": sid("US"), "RoleSid": sid("RL"),
    "ContentSid": sid("HX"), "WebhookSid": sid("WH"), "ChannelMessageSid": any_sid,
    "DateCreated": time, "DateUpdated": time,
    "Index": integer, "RetryCount": integer, "ErrorCode": integer,
    "Attributes": json_text, "Media": media,
    # Text that is stored: any characters (logs and headers escape them), if they fit.
    "Author": fits(AUTHOR_LENGTH),  # the customer's address
    "Source": fits(CHANNEL_LENGTH, str.upper),  # the reply's channel: SMS, WHATSAPP, SDK
    "Status": fits(STATUS_LENGTH, _status),  # sent, delivered, read, failed, undelivered
}


def problems(params: Mapping[str, str]) -> dict[str, str]:
    """The checked parameters whose values are not usable, each with its problem."""
    found = {}
    for name, value in params.items():
        check = CHECKS.get(name)
        if check is not None and value:
            problem = check(value)
            if problem:
                found[name] = problem
    return found
