"""The operator API under /api/: behind ADMIN_TOKEN, JSON in and out, on real data made
by signed webhooks and a fake Twilio API."""

import logging

import pytest

from app.services import services
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event

TOKEN = "t0k3n-for-the-operator-api-0123456789"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def api_app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN)


@pytest.fixture
def api(api_app):
    return api_app.test_client()


def reply_to(app, client, fake_api, **message):
    """Post a customer's message and let the sender answer it; return the reply's
    Twilio MessageSid (None when Twilio refused it)."""
    post_event(client, fake_api.message_added(**message))
    run_until_idle(services(app).sender)
    return fake_api.created[-1].sid if fake_api.created else None


def flush_counts(app):
    services(app).counts.flush()


def test_without_admin_token_the_api_is_off_and_says_so(app, client, make_app):
    """No ADMIN_TOKEN: /api/ and /admin answer 404, and the start-up banner says why."""
    from app.banner import lines
    from app.services import services

    app = make_app()
    client = app.test_client()
    assert client.get("/api/stats", headers=AUTH).status_code == 404
    assert client.get("/api/stats").get_json()["status"] == 404
    assert client.get("/admin/").status_code == 404
    assert "text/html" in client.get("/admin/").content_type
    assert any("set ADMIN_TOKEN" in text for _, text in lines(services(app).settings, None))


@pytest.mark.parametrize("headers, reason", [
    ({}, "no bearer token"),
    ({"Authorization": "Bearer wrong-token-wrong-token"}, "wrong token"),
    ({"Authorization": f"Basic {TOKEN}"}, "no bearer token"),
])
def test_refused_without_the_right_bearer_token(api, caplog, headers, reason):
    """401 with a JSON reason and WWW-Authenticate; the log says why, never the token."""
    caplog.set_level(logging.WARNING)
    response = api.get("/api/stats", headers=headers)
    assert response.status_code == 401
    assert reason in response.get_json()["error"]
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert reason in logged and "wrong-token" not in logged and TOKEN not in logged


def test_webhook_errors_stay_twilio_shaped(api):
    """A bad webhook still gets Twilio's plain answer, not the API's JSON."""
    response = post_event(api, message_added(), token="f" * 32)
    assert response.status_code == 403
    assert response.content_type.startswith("text/plain")


def test_timeline_links_message_decision_reply_and_every_receipt(api_app, api, fake_api):
    """One participant read the reply, another's receipt failed (30008): the reply's
    delivery says failed with that code; each participant shows what they got, and a
    `read` after `failed` keeps the failure and its code in the history."""
    sid = reply_to(api_app, api, fake_api, conversation_sid="CH" + "1" * 32)
    conversation = "CH" + "1" * 32
    read = delivery_updated(message_sid=sid, conversation_sid=conversation, status="failed",
                            error_code="30003")
    post_event(api, read)
    post_event(api, {**read, "Status": "read", "ErrorCode": "0"})
    other = delivery_updated(message_sid=sid, conversation_sid=conversation, status="failed",
                             error_code="30008")
    post_event(api, other)

    body = api.get(f"/api/conversations/{conversation}/timeline", headers=AUTH).get_json()
    [event] = body["events"]
    assert event["kind"] == "reply queued" and event["reason"] == "REPLY"
    reply = event["reply"]
    assert reply["status"] == "sent" and reply["message_sid"] == sid
    assert reply["attempts"] == 1
    assert reply["delivery"]["status"] == "failed"
    assert reply["delivery"]["error"]["code"] == 30008
    by_participant = {r["participant_sid"]: r for r in reply["receipts"]}
    first = by_participant[read["ParticipantSid"]]
    assert first["status"] == "read" and first["failed_as"] == "failed"
    assert first["error"]["code"] == 30003
    assert "unreachable" in first["error"]["meaning"]
    assert [(h["status"], h["error_code"]) for h in first["history"]] == [
        ("failed", 30003), ("read", None)]
    second = by_participant[other["ParticipantSid"]]
    assert second["status"] == "failed" and second["error"]["code"] == 30008


def test_replies_filtered_by_status_and_paginated(api_app, api, fake_api):
    """Failed replies only, newest first, two per page, with Twilio's code and fix."""
    fake_api.fail(3, 400, code=30007)
    for _ in range(3):
        reply_to(api_app, api, fake_api)
    reply_to(api_app, api, fake_api)  # this one is sent
    page = api.get("/api/replies?status=failed&limit=2&since=1h", headers=AUTH).get_json()
    assert [r["status"] for r in page["replies"]] == ["failed", "failed"]
    assert page["replies"][0]["error"]["code"] == 30007
    assert "spam" in page["replies"][0]["error"]["meaning"]
    assert page["replies"][0]["error"]["fix"]
    rest = api.get(f"/api/replies?status=failed&limit=2&before_id={page['next']}",
                   headers=AUTH).get_json()
    assert len(rest["replies"]) == 1 and rest["next"] is None
    assert len(api.get("/api/replies?status=sent", headers=AUTH).get_json()["replies"]) == 1


def test_requeue_a_failed_reply(api_app, api, fake_api):
    """A failed reply goes back to the queue once; requeueing it again is a conflict; a
    reply that does not exist is not found."""
    fake_api.fail(1, 400, code=21611)
    reply_to(api_app, api, fake_api)
    [failed] = api.get("/api/replies?status=failed", headers=AUTH).get_json()["replies"]
    assert api.get("/api/queue", headers=AUTH).get_json()["depth"] == 0
    response = api.post(f"/api/replies/{failed['id']}/requeue", headers=AUTH)
    assert response.status_code == 200 and response.get_json() == {"requeued": failed["id"]}
    queue = api.get("/api/queue", headers=AUTH).get_json()
    assert queue["depth"] == 1 and queue["oldest_pending_at"].endswith("Z")
    again = api.post(f"/api/replies/{failed['id']}/requeue", headers=AUTH)
    assert again.status_code == 409 and "queued, not failed" in again.get_json()["error"]
    missing = api.post("/api/replies/999999/requeue", headers=AUTH)
    assert missing.status_code == 404 and "does not exist" in missing.get_json()["error"]
    run_until_idle(services(api_app).sender)
    assert api.get("/api/queue", headers=AUTH).get_json()["depth"] == 0


def test_stats_over_a_period(api_app, api, fake_api):
    """Delivered and failed counts, failures by code with meaning, latency percentiles,
    decisions by reason, duplicates dropped and signature failures."""
    delivered = reply_to(api_app, api, fake_api, conversation_sid="CH" + "2" * 32)
    post_event(api, delivery_updated(message_sid=delivered, conversation_sid="CH" + "2" * 32,
                                     status="delivered"))
    fake_api.fail(1, 400, code=30007)
    reply_to(api_app, api, fake_api, conversation_sid="CH" + "3" * 32)
    again = fake_api.message_added(conversation_sid="CH" + "2" * 32)
    post_event(api, again)  # cooldown: silent
    post_event(api, again)  # duplicate
    post_event(api, fake_api.message_added(), token="f" * 32)  # forged
    flush_counts(api_app)

    stats = api.get("/api/stats?since=1h", headers=AUTH).get_json()
    assert stats["replies"]["delivered"] == 1 and stats["replies"]["failed"] == 1
    assert stats["failures_by_code"] == [
        {"code": 30007, "count": 1, "meaning": "filtered by the carrier as spam"}]
    assert stats["reply_latency_seconds"]["count"] == 1
    assert stats["reply_latency_seconds"]["p50"] >= 0
    assert stats["decisions_by_reason"] == {"REPLY": 2, "COOLDOWN": 1}
    assert stats["duplicates_dropped"] == 1 and stats["signature_failures"] == 1
    earlier = api.get("/api/stats?since=2000-01-01T00:00:00Z&until=2000-01-02",
                      headers=AUTH).get_json()
    assert earlier["replies"]["delivered"] == 0 and earlier["decisions_by_reason"] == {}


@pytest.mark.parametrize("query, message", [
    ("/api/stats?since=yesterday", "expected a duration"),
    ("/api/stats?since=1h&until=2h", "since must be before until"),
    ("/api/replies?status=lost", "status must be one of"),
    ("/api/replies?limit=-3", "positive integer"),
])
def test_bad_parameters_are_json_400s(api, query, message):
    response = api.get(query, headers=AUTH)
    assert response.status_code == 400
    assert message in response.get_json()["error"]


def test_recent_conversations_show_the_decision(api_app, api, fake_api):
    """Newest first, one row per conversation, with the reason of its latest decision."""
    reply_to(api_app, api, fake_api, conversation_sid="CH" + "4" * 32)
    post_event(api, message_added(conversation_sid="CH" + "4" * 32))  # cooldown
    post_event(api, message_added(conversation_sid="CH" + "5" * 32, author="alice@support"))
    page = api.get("/api/conversations", headers=AUTH).get_json()
    rows = {c["conversation_sid"]: c for c in page["conversations"]}
    assert rows["CH" + "4" * 32]["reason"] == "COOLDOWN"
    assert rows["CH" + "4" * 32]["messages"] == 2
    assert rows["CH" + "5" * 32]["reason"] == "AGENT_MESSAGE"
    assert api.get("/api/conversations/CHnothing/timeline", headers=AUTH).status_code == 404
