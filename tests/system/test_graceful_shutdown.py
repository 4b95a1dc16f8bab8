"""Graceful shutdown, proven: SIGTERM in the middle of a steady stream of webhooks, while
replies are in Twilio's (slow) hands, then a restart on the same database.

Every message acknowledged with 2xx is answered exactly once, and no webhook gets a 5xx
while the server shuts down (a refused or reset connection once the listener is closed
is what Twilio sees of any stopped server). Both with the sender inside the web
workers and with a dedicated `sender` process (stopped together with the web).
"""

from __future__ import annotations

import signal
import threading
from collections import Counter
from contextlib import ExitStack

import pytest
import requests

from tests.support.databases import NEEDS_POSTGRESQL
from tests.support.servers import flask_cli, gunicorn, reply_counts, sender_process
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

GRACE = 40  # gunicorn's graceful_timeout (25 s) and some


class Stream:
    """Two posters, each sending a new onMessageAdded about 10 times a second to
    whichever server is current; every outcome is recorded."""

    def __init__(self, url: str):
        self.url = url
        self.results: list[tuple[dict, int | str]] = []  # (params, status or error name)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._post, daemon=True) for _ in range(2)]

    def __enter__(self) -> Stream:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(15)

    def _post(self) -> None:
        while not self._stop.wait(0.1):  # the stream's pace, not a synchronisation
            params, url = message_added(), self.url + "/webhooks/conversations"
            try:
                outcome = requests.post(url, data=params, timeout=10, headers={
                    "X-Twilio-Signature": sign(params, url)}).status_code
            except requests.RequestException as exc:
                outcome = type(exc).__name__
            with self._lock:
                self.results.append((params, outcome))

    def acknowledged(self) -> list[dict]:
        with self._lock:
            return [p for p, outcome in self.results
                    if isinstance(outcome, int) and 200 <= outcome < 300]

    def outcomes(self) -> Counter:
        with self._lock:
            return Counter(outcome for _, outcome in self.results)


@pytest.fixture
def server_env(tmp_path, database_url, fake_api):
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path / "instance", "SENDER_POLL_SECONDS": "0.2",
        "SEND_BACKOFF_SECONDS": "0.05", "SEND_BACKOFF_MAX_SECONDS": "0.5",
        "TWILIO_HTTP_TIMEOUT": "5", "SEND_SETTLE_SECONDS": "6",
        # A cooldown would silence later messages of one conversation; each is its own.
        "AUTO_REPLY_COOLDOWN": "0",
    }
    assert flask_cli(env, "db", "upgrade").returncode == 0  # the release phase
    fake_api.latency = 0.4  # every reply is in flight for 0.4 s
    return env


def start(stack: ExitStack, env: dict, log_path, dedicated: bool):
    """gunicorn (2 workers) and, with `dedicated`, a sender process beside it."""
    web_env = {**env, "SENDER_IN_PROCESS": "false" if dedicated else "true"}
    server = stack.enter_context(gunicorn(web_env, log_path, workers=2))
    sender = None
    if dedicated:
        sender = sender_process(env, log_path.with_suffix(".sender.log"))
        stack.callback(lambda: sender.poll() is None and (sender.terminate(), sender.wait(30)))
    return server, sender


# Each sender (in the web workers, in a process of its own) and each database once: the
# stop is the same code in both senders, and both release their replies through the outbox.
@pytest.mark.parametrize("database_url, dedicated", [
    pytest.param("sqlite", False, id="sqlite-in-process sender"),
    pytest.param("postgresql", True, id="postgresql-dedicated sender", marks=NEEDS_POSTGRESQL),
], indirect=["database_url"])
def test_sigterm_mid_stream_loses_nothing_and_sends_nothing_twice(
        server_env, tmp_path, fake_api, dedicated):
    """SIGTERM while webhooks arrive and replies are being sent; restart; every 2xx is
    answered once, no 5xx."""
    with ExitStack() as first:
        server, sender = start(first, server_env, tmp_path / "first.log", dedicated)
        with Stream(server.url) as stream:
            wait_for(lambda: len(stream.acknowledged()) >= 30 and len(fake_api.created) >= 5,
                     timeout=30, interval=0.05)
            in_flight = len(stream.acknowledged()) - len(fake_api.created)
            server.process.send_signal(signal.SIGTERM)
            if sender:
                sender.send_signal(signal.SIGTERM)
            assert server.process.wait(GRACE) == 0
            assert sender is None or sender.wait(GRACE) == 0
            first.close()

            with ExitStack() as second:
                restarted, _ = start(second, server_env, tmp_path / "second.log", dedicated)
                stream.url = restarted.url
                before = len(stream.acknowledged())
                wait_for(lambda: len(stream.acknowledged()) >= before + 20, timeout=30)
                stream.__exit__(None, None, None)
                acknowledged = stream.acknowledged()
                wait_for(lambda: {c.in_reply_to for c in fake_api.created}
                         >= {p["MessageSid"] for p in acknowledged}, timeout=60, interval=0.1)
                wait_for(lambda: set(reply_counts(server_env["DATABASE_URL"])) == {"sent"},
                         timeout=30, interval=0.1)

    outcomes = stream.outcomes()
    print(f"outcomes {dict(outcomes)}; replies not yet sent at SIGTERM: {in_flight}")
    assert not [o for o in outcomes if isinstance(o, int) and o >= 500], outcomes
    assert not [o for o in outcomes if isinstance(o, int) and not 200 <= o < 300], outcomes
    answers = Counter(c.in_reply_to for c in fake_api.created)
    assert [sid for sid, n in answers.items() if n > 1] == []
    assert all(answers[p["MessageSid"]] == 1 for p in acknowledged)
    first_log = (tmp_path / ("first.sender.log" if dedicated else "first.log")).read_text()
    assert "background work stopped" in first_log  # the sender stopped, not killed
    assert "Traceback" not in first_log
