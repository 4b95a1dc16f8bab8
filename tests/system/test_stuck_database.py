"""A database that hangs (frozen, not gone): webhooks and /healthz get their 503 within
DATABASE_TIMEOUT (2 s) and some slack, well inside Twilio's 5 s; after, back by itself."""

from __future__ import annotations

import time
from collections import Counter
from urllib.parse import urlsplit

import pytest
import requests

from tests.conftest import ACCOUNT_SID, AUTH_TOKEN, PG_URL, message_added, reset_postgres, wait_for
from tests.servers import flask_cli, gunicorn, reply_counts
from tests.store.lock_holder import LockHolder
from tests.system.test_faults import post
from tests.tcp_proxy import ProxyProcess

LIMIT = 3.5  # seconds: DATABASE_TIMEOUT is 2 s


def timed(call):
    started = time.monotonic()
    response = call()
    return response.status_code, time.monotonic() - started


def answers_in_time_while_stuck(server) -> None:
    """Each webhook and /healthz gets a 503 within LIMIT."""
    for _ in range(4):
        status, took = timed(lambda: post(server.url, message_added()))
        assert (status, took < LIMIT) == (503, True), f"webhook: {status} after {took:.1f} s"
    for _ in range(2):
        status, took = timed(lambda: requests.get(server.url + "/healthz", timeout=10))
        assert (status, took < LIMIT) == (503, True), f"/healthz: {status} after {took:.1f} s"


def recovers(server, fake_api, database_url, accepted: list) -> None:
    """Healthy again by itself; new webhooks are answered, every accepted one exactly once."""
    wait_for(lambda: requests.get(server.url + "/healthz", timeout=10).status_code == 200,
             timeout=30, interval=0.2)
    after = [message_added() for _ in range(3)]
    assert [post(server.url, p).status_code for p in after] == [200] * 3
    accepted += after
    wait_for(lambda: reply_counts(database_url).get("sent", 0) >= len(accepted), timeout=30,
             interval=0.1)
    replied_to = Counter(c.form["Attributes"] for c in fake_api.created)
    assert max(replied_to.values()) == 1
    assert all(f'{{"autoReply": true, "inReplyTo": "{p["MessageSid"]}"}}' in replied_to
               for p in accepted)


def live_env(fake_api, tmp_path, database_url) -> dict:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path, "SENDER_POLL_SECONDS": "0.1", "SEND_LEASE": "3s",
        "SEND_BACKOFF_SECONDS": "0.05", "SEND_BACKOFF_MAX_SECONDS": "0.5",
    }


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: needs PostgreSQL")
def test_frozen_postgresql(tmp_path, fake_api):
    """PostgreSQL behind a proxy frozen with SIGSTOP: 503s in time; after SIGCONT, 200s."""
    reset_postgres(PG_URL)
    target = urlsplit(PG_URL)
    with ProxyProcess(target.hostname, target.port or 5432) as proxy:
        url = PG_URL.replace(target.netloc,
                             f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}")
        env = live_env(fake_api, tmp_path, url)
        assert flask_cli(env, "db", "upgrade").returncode == 0
        with gunicorn(env, tmp_path / "server.log", workers=2) as server:
            accepted = [message_added() for _ in range(3)]
            assert [post(server.url, p).status_code for p in accepted] == [200] * 3
            proxy.freeze()
            try:
                answers_in_time_while_stuck(server)
            finally:
                proxy.thaw()
            recovers(server, fake_api, PG_URL, accepted)


def test_frozen_sqlite_writer(tmp_path, fake_api):
    """Another process frozen while holding SQLite's writer turn: 503s in time; once it is
    gone, 200s."""
    path = tmp_path / "bot.sqlite3"
    env = live_env(fake_api, tmp_path, f"sqlite:///{path}")
    assert flask_cli(env, "db", "upgrade").returncode == 0
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        accepted = [message_added() for _ in range(3)]
        assert [post(server.url, p).status_code for p in accepted] == [200] * 3
        with LockHolder(path) as holder:
            holder.freeze()
            answers_in_time_while_stuck(server)
        recovers(server, fake_api, env["DATABASE_URL"], accepted)
