"""A database that hangs (frozen, not gone): webhooks and /healthz get their 503 within
DATABASE_TIMEOUT (1 s here) and some slack, well inside Twilio's 5 s; after, back by itself."""

from __future__ import annotations

import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests

from tests.support.databases import PG_URL, reset_postgres
from tests.support.lock_holder import LockHolder
from tests.support.servers import flask_cli, gunicorn, reply_counts
from tests.support.tcp_proxy import ProxyProcess
from tests.support.waiting import wait_for
from tests.support.webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    message_added,
    post,
    reply_attributes,
)

TIMEOUT = "1"  # DATABASE_TIMEOUT, seconds (PostgreSQL's connect_timeout: 2 s at least)
LIMIT = 5.0  # seconds: the 503 must come inside Twilio's 5 s (the timeout is 1 s)


def timed(name, call):
    started = time.monotonic()
    response = call()
    return name, response.status_code, time.monotonic() - started


def answers_in_time_while_stuck(server, *, at_once: bool, rounds: int) -> None:
    """Each webhook and /healthz gets a 503 within LIMIT, round after round: a later one
    comes after earlier ones gave up (a helper thread still waits in flock, a connection
    was cut). `at_once`: a round's requests wait together (queued for the writer turn)."""
    def webhook():
        return timed("webhook", lambda: post(server.url, message_added()))

    def health():
        return timed("/healthz", lambda: requests.get(server.url + "/healthz", timeout=10))

    with ThreadPoolExecutor(4 if at_once else 1) as pool:
        for _ in range(rounds):
            answers = list(pool.map(lambda call: call(), [webhook, webhook, webhook, health]))
            assert [(name, status, took < LIMIT) for name, status, took in answers] == [
                (name, 503, True) for name, _, _ in answers], answers


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
    assert all(reply_attributes(p) in replied_to for p in accepted)


def live_env(fake_api, tmp_path, database_url) -> dict:
    return {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path, "SENDER_POLL_SECONDS": "0.1", "SEND_LEASE": "3s",
        # A lease taken over is unsure (its holder may have sent the reply): the reply
        # waits SEND_SETTLE_SECONDS before it is sent again; short enough for the waits.
        "TWILIO_HTTP_TIMEOUT": "5", "SEND_SETTLE_SECONDS": "6",
        "SEND_BACKOFF_SECONDS": "0.05", "SEND_BACKOFF_MAX_SECONDS": "0.5",
        "DATABASE_TIMEOUT": TIMEOUT,
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
            server.wait_workers(2)  # both serve before the freeze (none is still booting)
            accepted = [message_added() for _ in range(3)]
            assert [post(server.url, p).status_code for p in accepted] == [200] * 3
            proxy.freeze()
            try:
                # A pooled connection is cut after 1 s, a new one gives up at the
                # request's deadline (1 s), or after 2 s (libpq) for the sender; a webhook
                # queued behind the sender's batch leaves at its own deadline.
                answers_in_time_while_stuck(server, at_once=False, rounds=1)
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
        # Both workers serve before the freeze: one still booting would run its schema
        # check into the frozen writer, fail to boot, and gunicorn would halt the server.
        server.wait_workers(2)
        accepted = [message_added() for _ in range(3)]
        assert [post(server.url, p).status_code for p in accepted] == [200] * 3
        with LockHolder(path) as holder:
            holder.freeze()
            answers_in_time_while_stuck(server, at_once=True, rounds=2)
        recovers(server, fake_api, env["DATABASE_URL"], accepted)
