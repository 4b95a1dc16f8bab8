"""LOG_FORMAT=json under gunicorn: every line is one JSON object, lines about a webhook
and its reply carry its SIDs and request id, and no secret is ever written."""

from __future__ import annotations

import json

import requests

from tests.support.databases import on_one_database
from tests.support.servers import gunicorn, reply_counts
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, delivery_updated, message_added, sign

ADMIN_TOKEN = "json-logs-admin-token-0123456789"


@on_one_database()  # the log format: the database plays no part
def test_json_lines_follow_a_conversation_and_hide_secrets(tmp_path, database_url, fake_api):
    """Traffic with failures (bad signature, bad token, a 400, a failed send, a failed
    receipt): each line parses as JSON; the webhook's lines carry its conversation,
    message and request id; neither the Auth Token nor ADMIN_TOKEN appears."""
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
           "DATABASE_AUTO_UPGRADE": "true", "INSTANCE_DIR": str(tmp_path / "instance"),
           "ADMIN_TOKEN": ADMIN_TOKEN, "LOG_FORMAT": "json", "LOG_LEVEL": "DEBUG",
           "SEND_MAX_ATTEMPTS": "1"}
    log_path = tmp_path / "server.log"
    with gunicorn(env, log_path, workers=2) as server:
        server.wait_workers(2)
        url = server.url + "/webhooks/conversations"

        def post(params, token=AUTH_TOKEN, **headers):
            return requests.post(url, data=params, timeout=10, headers={
                "X-Twilio-Signature": sign(params, url, token), **headers})

        fake_api.fail(1, 400, code=21604)  # its reply is refused for good
        answered = message_added(body="where is my order?")
        response = post(answered, **{"X-Request-Id": "req-followed-1"})
        assert response.status_code == 200
        assert response.headers["X-Request-Id"] == "req-followed-1"
        assert post(message_added(author="+15550001111")).status_code == 200
        assert post(message_added(), token="e" * 32).status_code == 403
        assert post({"EventType": "onMessageAdded"}).status_code == 400
        assert post(delivery_updated(status="undelivered", error_code="30003")
                    ).status_code == 200
        assert requests.get(server.url + "/metrics", timeout=5,
                            headers={"Authorization": "Bearer wrong"}).status_code == 401
        assert requests.get(server.url + "/metrics", timeout=5, headers={
            "Authorization": f"Bearer {ADMIN_TOKEN}"}).status_code == 200
        wait_for(lambda: reply_counts(database_url) == {"sent": 1, "failed": 1}, timeout=30,
                 interval=0.2)
    text = log_path.read_text()
    assert AUTH_TOKEN not in text
    assert ADMIN_TOKEN not in text
    lines = text.splitlines()
    banner = [i for i, line in enumerate(lines) if not line.startswith("{")]
    # gunicorn writes its first line ("Starting gunicorn") before any hook can run.
    assert len(banner) <= 1 and all("Starting gunicorn" in lines[i] for i in banner)
    records = [json.loads(line) for i, line in enumerate(lines) if i not in banner]
    assert all({"time", "level", "logger", "pid", "message"} <= r.keys() for r in records)
    followed = [r for r in records if r.get("request_id") == "req-followed-1"]
    assert any(r["message"].startswith("event ") for r in followed)
    assert all(r.get("conversation_sid") == answered["ConversationSid"] and
               r.get("message_sid") == answered["MessageSid"] for r in followed)
    assert any(r["level"] == "WARNING" and "webhook rejected" in r["message"] and
               r.get("request_id") for r in records)
    assert len({r["pid"] for r in records}) >= 3  # the master and both workers
