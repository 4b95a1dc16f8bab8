"""Faults, on loopback and bounded: after each, every webhook accepted with 2xx gets
exactly one reply (the crash window is covered by the sender's lookup before resending)."""

import os
import signal
import subprocess
from collections import Counter

import pytest
import requests

from tests.support.databases import PG_URL, on_one_database, reset_postgres
from tests.support.servers import (
    flask_cli,
    gunicorn,
    reply_counts,
    sender_process,
    unsent_replies,
)
from tests.support.tcp_proxy import TcpProxy
from tests.support.waiting import wait_for
from tests.support.webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    assert_each_answered_once,
    message_added,
    post,
    reply_attributes,
)


def wait_all_sent(database_url, count, timeout=60, server=None):
    """Wait until `count` replies are sent and no other is recorded; failing, say which
    are not and what the server logged about them."""
    try:
        wait_for(lambda: reply_counts(database_url) == {"sent": count}, timeout, interval=0.1)
    except AssertionError:
        raise AssertionError(f"replies not all sent within {timeout}s: "
                             f"{reply_counts(database_url)} (expected {count} sent)\n"
                             f"{unsent_replies(database_url)}\n"
                             + ("server log (last 60 lines):\n"
                                + "\n".join(server.log.splitlines()[-60:]) if server else "")
                             ) from None


@on_one_database()  # an API fault: the database plays no part
def test_api_down_for_a_while(server_env, tmp_path, fake_api):
    fake_api.stop()
    with gunicorn(server_env, tmp_path / "server.log", workers=2) as server:
        accepted = [p for p in (message_added() for _ in range(20))
                    if post(server.url, p).status_code == 200]
        assert len(accepted) == 20
        wait_for(lambda: "will retry" in server.log, timeout=20)
        fake_api.start()
        wait_all_sent(server_env["DATABASE_URL"], 20)
    assert_each_answered_once(fake_api, accepted)


@on_one_database()  # an API fault: the database plays no part
def test_429_storm(server_env, tmp_path, fake_api):
    fake_api.fail(80, status=429)
    with gunicorn(server_env, tmp_path / "server.log", workers=2) as server:
        accepted = [p for p in (message_added() for _ in range(20))
                    if post(server.url, p).status_code == 200]
        wait_all_sent(server_env["DATABASE_URL"], 20)
    assert len(accepted) == 20
    assert_each_answered_once(fake_api, accepted)


@on_one_database()  # an API fault: the database plays no part
def test_three_second_api_latency_does_not_delay_acks(server_env, tmp_path, fake_api):
    """Acks come back while the first reply is still in Twilio's (slow) hands."""
    fake_api.latency = 3.0
    with gunicorn(server_env, tmp_path / "server.log", workers=2) as server:
        accepted = []
        for params in (message_added() for _ in range(10)):
            assert post(server.url, params).status_code == 200
            accepted.append(params)
        assert fake_api.created == []  # every ack was sent before any reply completed
        wait_all_sent(server_env["DATABASE_URL"], 10, timeout=60)
    assert_each_answered_once(fake_api, accepted)


def test_kill_9_of_a_sender_in_the_middle_of_sending(server_env, tmp_path, fake_api):
    """The sender dies after Twilio accepted a reply, before recording it: no duplicate."""
    env = {**server_env, "SENDER_IN_PROCESS": "false"}
    victim = {}

    def kill_sender_on_first_create(record):
        if "pid" in victim and not victim.get("killed"):
            victim["killed"] = True
            os.kill(victim["pid"], signal.SIGKILL)

    fake_api.on_create = kill_sender_on_first_create
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        accepted = [p for p in (message_added() for _ in range(10))
                    if post(server.url, p).status_code == 200]
        first = sender_process(env)
        victim["pid"] = first.pid
        assert first.wait(30) == -signal.SIGKILL
        second = sender_process(env, tmp_path / "second.log")
        try:
            wait_all_sent(env["DATABASE_URL"], 10)
        finally:
            second.terminate()
            second.wait(20)
    assert_each_answered_once(fake_api, accepted)
    assert "reply found already sent" in (tmp_path / "second.log").read_text()


def test_kill_9_of_web_workers_in_the_middle_of_sending(server_env, tmp_path, fake_api):
    """Workers (with in-process senders) die mid-send; gunicorn respawns them; no loss, no dup.

    A post whose worker died under it may have been committed before the connection was
    cut (Twilio sees a failure, the reply still goes out): such a message gets at most one
    reply, each acknowledged one exactly one."""
    state = {}

    def kill_workers_on_first_create(record):
        if not state.get("killed"):
            state["killed"] = True
            children = subprocess.run(["pgrep", "-P", str(state["master"])],
                                      capture_output=True, text=True).stdout.split()
            for pid in children:
                os.kill(int(pid), signal.SIGKILL)

    fake_api.latency = 0.2
    with gunicorn(server_env, tmp_path / "server.log", workers=2) as server:
        state["master"] = server.process.pid
        fake_api.on_create = kill_workers_on_first_create
        accepted, cut = [], []
        for params in (message_added() for _ in range(10)):
            try:
                if post(server.url, params).status_code == 200:
                    accepted.append(params)
            except requests.ConnectionError:
                cut.append(params)  # the worker died under this request: committed or not
        wait_for(lambda: state.get("killed"), timeout=10)
        server.wait_healthy()

        def settled():
            counts = reply_counts(server_env["DATABASE_URL"])
            return set(counts) == {"sent"} and counts["sent"] >= len(accepted)
        try:
            wait_for(settled, timeout=60, interval=0.1)
        except AssertionError:
            raise AssertionError(f"replies {reply_counts(server_env['DATABASE_URL'])}, "
                                 f"{len(accepted)} accepted, {len(cut)} cut; server log:\n"
                                 + server.log[-4000:]) from None
    assert len(accepted) >= 8
    answered = Counter(c.form["Attributes"] for c in fake_api.created)
    assert set(answered.values()) == {1}, answered  # no message answered twice
    assert {reply_attributes(p) for p in accepted} <= set(answered)  # none acknowledged lost
    assert set(answered) <= {reply_attributes(p) for p in accepted + cut}  # nothing else
    assert reply_counts(server_env["DATABASE_URL"]) == {"sent": len(answered)}


@pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: needs PostgreSQL")
def test_database_unavailable_for_a_moment(tmp_path, fake_api):
    """While the database is gone: 503s and an unhealthy /healthz; after: back by itself."""
    from urllib.parse import urlsplit

    reset_postgres(PG_URL)
    target = urlsplit(PG_URL)
    proxy = TcpProxy(target.hostname, target.port or 5432).start()
    url = PG_URL.replace(target.netloc, f"{target.username or 'postgres'}@127.0.0.1:{proxy.port}")
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": url, "INSTANCE_DIR": tmp_path,
        "SENDER_POLL_SECONDS": "0.1",
        # A claim or a lease whose commit was cut off is ambiguous: the lease brings the
        # reply back, unsure (its holder may have sent it), so it waits SEND_SETTLE_SECONDS
        # before it is sent again (60 s by default, longer than the test's wait).
        "SEND_LEASE": "3s", "TWILIO_HTTP_TIMEOUT": "5", "SEND_SETTLE_SECONDS": "6",
    }
    assert flask_cli(env, "db", "upgrade").returncode == 0
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        accepted = [p for p in (message_added() for _ in range(5))
                    if post(server.url, p).status_code == 200]
        proxy.cut()
        during = [post(server.url, message_added()).status_code for _ in range(5)]
        assert set(during) == {503}
        assert requests.get(server.url + "/healthz", timeout=5).status_code == 503
        proxy.restore()
        wait_for(lambda: requests.get(server.url + "/healthz", timeout=5).status_code == 200,
                 timeout=20)
        after = [p for p in (message_added() for _ in range(5))
                 if post(server.url, p).status_code == 200]
        accepted += after
        assert len(accepted) == 10
        wait_all_sent(url, 10, server=server)
        assert "Traceback" not in server.log
    proxy.cut()
    assert_each_answered_once(fake_api, accepted)
