"""Webhooks as Twilio sends them: realistic payloads, signed with the real algorithm."""

from __future__ import annotations

import secrets
from urllib.parse import urlencode

import requests
from twilio.request_validator import RequestValidator

from app.cli import sample_events as samples

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
WEBHOOK_URL = "http://localhost/webhooks/conversations"


def sign(params, url: str = WEBHOOK_URL, token: str = AUTH_TOKEN) -> str:
    return RequestValidator(token).compute_signature(url, params)


def form_body(params) -> str:
    items = params.items(multi=True) if hasattr(params, "items") and hasattr(params, "getlist") \
        else params.items()
    return urlencode(list(items))


def post_event(client, params, *, path="/webhooks/conversations", token=AUTH_TOKEN,
               headers=None, url=None):
    """Post a webhook signed like Twilio signs it, through Flask's test client."""
    url = url or "http://localhost" + path
    all_headers = {
        "X-Twilio-Signature": sign(params, url, token),
        "I-Twilio-Idempotency-Token": secrets.token_hex(8),
        "Content-Type": "application/x-www-form-urlencoded; charset=utf-8",
    }
    all_headers.update(headers or {})
    return client.post(path, data=form_body(params), headers=all_headers)


def message_added(**overrides) -> dict:
    return samples.build("onMessageAdded", account_sid=ACCOUNT_SID, **overrides)


def delivery_updated(**overrides) -> dict:
    return samples.build("onDeliveryUpdated", account_sid=ACCOUNT_SID, **overrides)


def post(server_url, params):
    """Post a signed webhook to a real server over HTTP."""
    url = server_url + "/webhooks/conversations"
    return requests.post(url, data=params, timeout=10,
                         headers={"X-Twilio-Signature": sign(params, url)})


def reply_attributes(params) -> str:
    """The Attributes of the bot's reply to the webhook `params`."""
    return f'{{"autoReply": true, "inReplyTo": "{params["MessageSid"]}"}}'


def assert_each_answered_once(fake_api, accepted):
    """The fake API got exactly one reply to each of the `accepted` webhooks."""
    in_reply_to = sorted(c.form["Attributes"] for c in fake_api.created)
    expected = sorted(reply_attributes(p) for p in accepted)
    assert in_reply_to == expected
