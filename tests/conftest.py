"""Fixtures: an app on a real database (SQLite always, PostgreSQL when configured),
a fake Conversations API over real HTTP, and webhooks signed with the real algorithm."""

from __future__ import annotations

import os
import secrets
from urllib.parse import urlencode, urlsplit, urlunsplit

import pytest
from sqlalchemy import create_engine, text
from twilio.request_validator import RequestValidator

from app import create_app
from app.cli import sample_events
from app.services import services
from tests.fake_conversations import FakeConversationsAPI

ACCOUNT_SID = "AC" + "a1" * 16
AUTH_TOKEN = "0123456789abcdef0123456789abcdef"
WEBHOOK_URL = "http://localhost/webhooks/conversations"


def worker_database(url: str | None) -> str | None:
    """Under pytest-xdist each worker gets a database of its own (test_gw0, test_gw1, ...,
    created on first use next to TEST_DATABASE_URL's), so tests that reset the schema
    never meet another worker's."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not url or not worker:
        return url
    parts = urlsplit(url)
    name = f"{parts.path.lstrip('/') or 'test'}_{worker}"
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1),
                           isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            if not conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :name"),
                                {"name": name}).scalar():
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        engine.dispose()
    return urlunsplit(parts._replace(path=f"/{name}"))


PG_URL = worker_database(os.environ.get("TEST_DATABASE_URL"))

BACKENDS = [
    "sqlite",
    pytest.param("postgresql", marks=pytest.mark.skipif(
        not PG_URL, reason="TEST_DATABASE_URL is not set: no PostgreSQL to test against")),
]


def reset_postgres(url: str) -> None:
    """Empty the test database's public schema so migrations start from nothing."""
    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA public CASCADE; CREATE SCHEMA public"))
    engine.dispose()


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    reset_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def fake_api():
    api = FakeConversationsAPI(ACCOUNT_SID, AUTH_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def env(tmp_path, database_url, fake_api):
    """Settings as the environment would give them: live mode against the fake API."""
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID,
        "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url,
        "TWILIO_HTTP_TIMEOUT": "2",
        "SEND_SETTLE_SECONDS": "2.5",  # after an unknown outcome (more than the timeout)
        "INSTANCE_DIR": str(tmp_path / "instance"),
        "DATABASE_URL": database_url,
        "DATABASE_AUTO_UPGRADE": "true",
        "AGENT_IDENTITIES": "alice@support, bob@support",
        "SENDER_IN_PROCESS": "false",
        "SEND_BACKOFF_SECONDS": "0",
        "SEND_MAX_ATTEMPTS": "4",
        "LOG_LEVEL": "DEBUG",
    }


@pytest.fixture
def app(env):
    app = create_app(env)
    app.config["TESTING"] = True
    yield app
    services(app).supervisor.stop()  # what the first request started (hourly counts)
    services(app).db.dispose()


@pytest.fixture
def client(app):
    return app.test_client()


@pytest.fixture
def runner(app):
    return app.test_cli_runner()


@pytest.fixture
def sender(app):
    return services(app).sender


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
    return sample_events.build("onMessageAdded", account_sid=ACCOUNT_SID, **overrides)


def delivery_updated(**overrides) -> dict:
    return sample_events.build("onDeliveryUpdated", account_sid=ACCOUNT_SID, **overrides)


@pytest.fixture
def make_app(env):
    """Build another app on the same database and fake API, with some settings changed."""
    built = []

    def make(**overrides):
        app = create_app({**env, **{k: str(v) for k, v in overrides.items()}})
        app.config["TESTING"] = True
        built.append(app)
        return app

    yield make
    for app in built:
        services(app).supervisor.stop()
        services(app).db.dispose()


def wait_for(condition, timeout: float = 10.0, interval: float = 0.01):
    """Poll `condition` until it is true; fail the test if `timeout` passes first."""
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
