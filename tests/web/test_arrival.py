"""The request's deadline: DATABASE_TIMEOUT from its arrival, as the server tells it."""

import time

import pytest

from app.web.arrival import ARRIVED, arrived
from tests.support.webhooks import message_added, post_event


def arrived_ago(seconds: float) -> dict:
    return {ARRIVED: repr(time.monotonic() - seconds)}


@pytest.mark.parametrize("given, expected", [
    (None, "now"), ("soon", "now"), ("nan", "now"), (repr(1e12), "now"), ("100.5", 100.5)])
def test_arrival_is_the_servers_word_never_later_than_now(given, expected):
    """Missing, malformed or in the future: now. Else the time the server gave."""
    before = time.monotonic()
    at = arrived({} if given is None else {ARRIVED: given})
    if expected == "now":
        assert before <= at <= time.monotonic()
    else:
        assert at == expected


def test_a_webhook_past_its_deadline_gets_503_and_records_nothing(client):
    """A webhook that waited longer than DATABASE_TIMEOUT (2 s) for a thread answers 503
    with Retry-After at once; nothing is recorded, so Twilio's retry is handled afresh."""
    params = message_added()
    client.environ_base.update(arrived_ago(2.5))
    late = post_event(client, params)
    assert late.status_code == 503 and late.headers["Retry-After"] == "2"
    client.environ_base.update(arrived_ago(0.1))
    retry = post_event(client, params)
    assert retry.status_code == 200
    assert retry.headers["X-Webhook-Outcome"].startswith("reply queued")


def test_health_past_its_deadline_is_503(client):
    client.environ_base.update(arrived_ago(2.5))
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json["database"] == "unavailable"


def test_other_pages_have_no_deadline(make_app):
    """Only webhooks and /healthz are bounded: the API reads however long ago it arrived."""
    token = "a-token-long-enough-for-the-api-1234"
    client = make_app(ADMIN_TOKEN=token).test_client()
    client.environ_base.update(arrived_ago(60))
    assert client.get("/api/stats", headers={"Authorization": f"Bearer {token}"}).status_code == 200
