"""Fixtures for the real-server tests."""

import pytest

from tests.support.fake_conversations import FakeConversationsAPI
from tests.support.servers import flask_cli
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN


@pytest.fixture
def fake_api():
    """The fake API of the real-server tests: they post hundreds of webhooks, each in a
    new conversation (as `send-event` does), so every Conversation SID exists here."""
    api = FakeConversationsAPI(ACCOUNT_SID, AUTH_TOKEN, any_conversation=True).start()
    yield api
    api.stop()


@pytest.fixture
def server_env(tmp_path, database_url, fake_api):
    """Settings for gunicorn and sender processes on the test database and the fake API,
    with short polls, backoffs and leases; the schema is migrated first."""
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path, "SENDER_POLL_SECONDS": "0.1",
        "SEND_BACKOFF_SECONDS": "0.05", "SEND_BACKOFF_MAX_SECONDS": "0.5",
        "SEND_MAX_ATTEMPTS": "100", "TWILIO_HTTP_TIMEOUT": "5", "SEND_LEASE": "3s",
        "SEND_SETTLE_SECONDS": "6",
    }
    assert flask_cli(env, "db", "upgrade").returncode == 0
    return env
