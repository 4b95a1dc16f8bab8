"""Hostile fields, signed: any value in any field of any event type, signed as Twilio signs
it and posted through the app, is a 2xx or a 4xx on either database, never a 5xx; and
whatever it held, the sender only ever calls a conversation's own Messages path.
(Issue 17, points 3 and 5.)"""

from __future__ import annotations

import json
import re
from datetime import datetime, timedelta, timezone

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.cli import sample_events
from app.handlers import build_router
from app.pipeline import fields
from app.pipeline.events import KNOWN_EVENTS, PRE_EVENTS
from tests.support.sending import run_until_idle
from tests.support.webhooks import ACCOUNT_SID, post_event

PATH = "/webhooks/conversations"
EXAMPLES = settings(max_examples=200, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow, HealthCheck.data_too_large])
MESSAGES_PATH = re.compile(r"/v1/Conversations/CH[0-9a-fA-F]{32}/Messages")

# Every field the samples carry, for every event type, and every field the app checks
# (ParticipantsCount is no documented parameter: one the app has never heard of).
FIELD_NAMES = sorted({name for event_type in KNOWN_EVENTS
                      for name in sample_events.build(event_type, account_sid=ACCOUNT_SID)}
                     | set(fields.CHECKS) | {"Media", "ParticipantsCount"})

HEX = st.text("0123456789abcdefABCDEF", min_size=32, max_size=32)
ODD_HEX = st.text("0123456789abcdefg\u0661", min_size=0, max_size=40)
SUFFIXES = st.sampled_from(["", "/../../Services/IS" + "b" * 32 + "/Conversations/CH" + "c" * 32,
                            "?Order=desc", "#x", "%2F..", "/", "\n", " ", "/Messages/IM1"])
PREFIXES = st.sampled_from(["AC", "CH", "DY", "IM", "IS", "MB", "ME", "MG", "SM", "WA", "US",
                            "RL", "HX", "WH", "ch", "", "C"])


def sids(prefix: str | None = None):
    """Well-formed SIDs of the kind, and everything near them."""
    kind = st.just(prefix) if prefix else PREFIXES
    return st.one_of(
        st.builds(lambda p, h: p + h, kind, HEX),
        st.builds(lambda p, h, s: p + h + s, kind | PREFIXES, HEX | ODD_HEX, SUFFIXES),
    )


EDGE_TIMES = st.sampled_from([
    "9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59.999999Z",
    "0001-01-01T00:00:00Z", "2024-12-18T14:35:28.423Z", "2024-02-30T00:00:00Z",
    "2024-12-18T14:35:28+24:00", "99999-01-01", "2024-W01-1", "20241218T143528Z", "now",
])
TIMES = st.one_of(
    EDGE_TIMES,
    st.builds(lambda moment, minutes: moment.replace(
        tzinfo=timezone(timedelta(minutes=minutes))).isoformat(),
        st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31, 23, 59)),
        st.integers(-(24 * 60 - 1), 24 * 60 - 1)),
)
INTEGERS = st.one_of(
    st.integers(-(10**25), 10**25).map(str),
    st.sampled_from(["99999999999999999999", "2147483648", "2147483647", "-1", "1e3", "3.5",
                     "\u0661\u0662", "\u00b2", "1_000", " 7", "9" * 5000]),
)
PLAIN_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner,
                                                                max_size=3),
    max_leaves=12).map(json.dumps)


def nested(depth: int, shape: str) -> str:
    """JSON (or nearly) nested `depth` levels: 975 is under 2 KB."""
    return {"list": "[" * depth + "]" * depth, "object": '{"a":' * depth + "1" + "}" * depth,
            "unclosed": "[" * depth, "in a string": '["' + "[" * depth + '"]',
            "mixed": "[{" * depth + "}]" * depth}[shape]


DEEP_JSON = st.builds(nested, st.integers(0, 3000),
                      st.sampled_from(["list", "object", "unclosed", "in a string", "mixed"]))
JSON = st.one_of(PLAIN_JSON, DEEP_JSON, st.just('{"autoReply": true, "inReplyTo": "IM1"}'),
                 st.builds(lambda sid: json.dumps([{"Sid": sid, "ContentType": "image/png"}]),
                           sids("ME")))
TEXT = st.one_of(
    st.text(max_size=300),
    st.builds(lambda c, n: c * n, st.sampled_from(["\u00df", "\u0130", "\ufb03", "\r\n", "\x1b",
                                                   "x", " ", "\u0000"]), st.integers(1, 400)),
    st.sampled_from(["sent", "delivered", "read", "failed", "undelivered", "SMS", "WHATSAPP",
                     "SDK", "system", "support-bot", "alice@support", "STOP", "START"]),
)
ANYTHING = st.one_of(TEXT, TIMES, INTEGERS, JSON, sids())

KIND_OF = {
    **{name: sids(check_prefix) for name, check_prefix in (
        ("AccountSid", "AC"), ("ChatServiceSid", "IS"), ("ConversationSid", "CH"),
        ("MessageSid", "IM"), ("MessagingServiceSid", "MG"), ("ParticipantSid", "MB"),
        ("DeliveryReceiptSid", "DY"), ("UserSid", "US"), ("RoleSid", "RL"),
        ("ContentSid", "HX"), ("WebhookSid", "WH"), ("ChannelMessageSid", "SM"))},
    "DateCreated": TIMES, "DateUpdated": TIMES, "Index": INTEGERS, "RetryCount": INTEGERS,
    "ErrorCode": INTEGERS, "ParticipantsCount": INTEGERS, "Attributes": JSON, "Media": JSON,
}


EDGES = {  # values at the edges, picked as often as generated ones
    "time": ["9999-12-31T23:59:59-05:00", "0001-01-01T00:00:00+05:00",
             "9999-12-31T23:59:59.999999Z", "0001-01-01T00:00:00Z", "2999-12-31T23:00:00-05:00",
             "2024-12-18T14:35:28.423Z", "2024-02-30T00:00:00Z", "2024-12-18T14:35:28+24:00"],
    "integer": ["99999999999999999999", "2147483648", "2147483647", "-1", "\u0661", "9" * 5000],
    "json": [nested(975, "list"), nested(2000, "object"), nested(5000, "unclosed"),
             nested(65, "mixed"), nested(64, "list"), nested(3000, "in a string")],
    "sid": ["CH" + "a" * 32 + "/../../Services/IS" + "b" * 32 + "/Conversations/CH" + "c" * 32,
            "CH" + "a" * 32 + "?Order=desc", "CH" + "a" * 31, "CH" + "a" * 32 + "\n"],
    "text": ["\u00df" * 16, "\u0130" * 16, "x" * 17, "x" * 257, "   ", "a\x00b"],
}
KIND = {"DateCreated": "time", "DateUpdated": "time", "Index": "integer",
        "RetryCount": "integer", "ErrorCode": "integer", "ParticipantsCount": "integer",
        "Attributes": "json", "Media": "json"}


def value_for(name: str):
    """A value for the field: an edge of its kind, one generated near it, or anything."""
    kind = KIND.get(name, "sid" if name.endswith("Sid") else "text")
    choices = [st.sampled_from(EDGES[kind]), KIND_OF.get(name, TEXT), ANYTHING]
    return st.sampled_from(choices).flatmap(lambda chosen: chosen)


# Every event type; half the time one a handler reads (and stores), where values matter.
HANDLED = sorted(t for t in KNOWN_EVENTS if build_router().handles(t))
EVENT_TYPES = st.sampled_from(HANDLED) | st.sampled_from(sorted(KNOWN_EVENTS))
CHECKED = sorted(fields.CHECKS)


def change(name: str):
    """(name, a new value), or (name, None) one time in six: the field left out."""
    return st.tuples(st.just(name), st.integers(0, 5).flatmap(
        lambda i: value_for(name) if i else st.none()))


# A few fields changed, a checked one half the time.
CHANGES = st.lists((st.sampled_from(CHECKED) | st.sampled_from(FIELD_NAMES)).flatmap(change),
                   max_size=6)
TOKENS = st.none() | st.text(st.characters(min_codepoint=32, max_codepoint=255), max_size=250)


@EXAMPLES
@given(event_type=EVENT_TYPES, changes=CHANGES, token=TOKENS)
def test_signed_hostile_fields_are_never_5xx_nor_steer_a_url(client, sender, fake_api,
                                                             event_type, changes, token):
    """Every field of every event type, on SQLite and PostgreSQL (database_url's params)."""
    params = sample_events.build(event_type, account_sid=ACCOUNT_SID)
    for name, value in changes:
        if value is None:
            params.pop(name, None)
        else:
            params[name] = value
    path = PATH + "/pre" if event_type in PRE_EVENTS else PATH
    headers = {} if token is None else {"I-Twilio-Idempotency-Token": token}
    response = post_event(client, params, path=path, headers=headers)
    assert 200 <= response.status_code < 500, (response.status_code, response.get_data())

    if response.headers.get("X-Webhook-Outcome", "").startswith("reply queued"):
        already = len(fake_api.calls)
        run_until_idle(sender)
        for method, called in fake_api.calls[already:]:
            assert MESSAGES_PATH.fullmatch(called), (method, called)
