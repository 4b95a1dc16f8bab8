"""Fixtures: an app on a real database (SQLite always, PostgreSQL when configured),
a fake Conversations API over real HTTP, and webhooks signed with the real algorithm."""

from __future__ import annotations

import pytest

from app import create_app
from app.services import services
from tests.support.databases import BACKENDS, PG_URL, empty_postgres, reset_postgres
from tests.support.fake_conversations import FakeConversationsAPI
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN


@pytest.fixture(params=BACKENDS)
def database_url(request, tmp_path):
    """Each test on both databases: a new SQLite file (the app creates its schema), and
    PostgreSQL migrated with no rows, as the release phase leaves it (emptying it is ~20x
    faster than migrating it again; `unmigrated` for a test that needs no schema at all)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    empty_postgres(PG_URL)
    return PG_URL


@pytest.fixture
def unmigrated(database_url):
    """The database without any schema, as a new one is: for what happens before the
    first migration (a new SQLite file has none already)."""
    if database_url == PG_URL:
        reset_postgres(PG_URL)
    return database_url


@pytest.fixture
def fake_api():
    api = FakeConversationsAPI(ACCOUNT_SID, AUTH_TOKEN).start()
    yield api
    api.stop()


@pytest.fixture
def any_conversation(fake_api):
    """For modules whose tests post webhooks of new conversations the fake was not told of
    (it answers 404 for those, as Twilio does): every conversation exists there
    (`pytestmark = pytest.mark.usefixtures("any_conversation")`)."""
    fake_api.any_conversation = True


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
