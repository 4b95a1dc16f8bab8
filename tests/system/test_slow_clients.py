"""Slow clients: connections that send a request's body at 1 byte/s, beside real
webhooks, against gunicorn exposed directly and behind the shipped nginx site.

Stock gthread gives a thread to a connection at its first byte, so 8 such clients (2
workers x 4 threads) left 2-4 of 6 webhooks answered within 5 s and 16 stopped every
answer. The worker (app/server/worker.py) reads each request whole before a thread serves it and
answers 408 to one not whole within REQUEST_READ_TIMEOUT; nginx buffers requests too.
Loopback only, bounded in time and count: the slow clients stop with the test.
"""

from __future__ import annotations

import socket
import ssl
import statistics
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.fake_conversations import FakeConversationsAPI
from tests.support.nginx import installed_nginx, nginx
from tests.support.servers import free_port, gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

WEBHOOKS = 30


class SlowClients:
    """`count` connections, each sending a POST's head, then its body 1 byte a second.
    A connection the server closes is counted and opened again, as an attacker would."""

    def __init__(self, port: int, count: int, *, tls: ssl.SSLContext | None = None,
                 host: str = "127.0.0.1"):
        self.port, self.count, self.tls, self.host = port, count, tls, host
        self.closed_by_server = 0
        self.bytes_sent = 0
        self.connected = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SlowClients:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(10)

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        if self.tls:
            sock = self.tls.wrap_socket(sock, server_hostname=self.host)
        sock.sendall(b"POST /webhooks/conversations HTTP/1.1\r\nHost: " + self.host.encode()
                     + b"\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                     b"Content-Length: 100000\r\n\r\nB")
        sock.setblocking(False)
        return sock

    def _run(self) -> None:
        sockets = [self._open() for _ in range(self.count)]
        self.connected.set()
        while not self._stop.wait(1.0):  # the pace of the attack, not a synchronisation
            for i, sock in enumerate(sockets):
                if self._closed(sock):
                    self.closed_by_server += 1
                    sock.close()
                    sockets[i] = sock = self._open()
                try:
                    sock.send(b"x")
                    self.bytes_sent += 1
                except (OSError, ssl.SSLError):
                    pass  # noticed as closed on the next round
        for sock in sockets:
            sock.close()

    @staticmethod
    def _closed(sock: socket.socket) -> bool:
        """Whether the server answered or closed (an early answer such as 408 counts)."""
        try:
            return sock.recv(4096) is not None  # b"" (closed) or an answer
        except (BlockingIOError, ssl.SSLWantReadError):
            return False
        except OSError:
            return True


def timed_webhooks(base_url: str, count: int, *, verify=True) -> list[tuple[int, float]]:
    """Post `count` signed webhooks, 6 at a time (Twilio's bursts), each on a new
    connection; return (status, seconds) for each (status 0: no answer within 10 s)."""
    def one(_):
        params = message_added()
        url = base_url + "/webhooks/conversations"
        started = time.monotonic()
        try:
            status = requests.post(url, data=params, timeout=10, verify=verify, headers={
                "X-Twilio-Signature": sign(params, url), "Connection": "close"}).status_code
        except requests.RequestException:
            status = 0
        return status, time.monotonic() - started

    with ThreadPoolExecutor(6) as pool:
        return list(pool.map(one, range(count)))


def p99(results) -> float:
    return statistics.quantiles([s for _, s in results], n=100, method="inclusive")[98]


@pytest.fixture
def fake_api():
    api = FakeConversationsAPI(ACCOUNT_SID, AUTH_TOKEN, any_conversation=True).start()
    yield api
    api.stop()


def server_env(tmp_path, fake_api, **overrides):
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
            "SENDER_POLL_SECONDS": "0.2", "LOG_LEVEL": "WARNING", **overrides}


def test_direct_gunicorn_answers_webhooks_beside_16_slow_clients(tmp_path, fake_api):
    """No proxy: 16 clients at 1 byte/s (twice the threads) delay no webhook, and each is
    answered 408 and closed once REQUEST_READ_TIMEOUT (3 s here) has passed."""
    env = server_env(tmp_path, fake_api, REQUEST_READ_TIMEOUT="3")
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        port = int(server.url.rsplit(":", 1)[1])
        with SlowClients(port, 16) as slow:
            assert slow.connected.wait(10)
            results = timed_webhooks(server.url, WEBHOOKS)
            wait_for(lambda: slow.closed_by_server >= 16, timeout=15, interval=0.1)
    print(f"direct, 16 slow clients: p99 {p99(results):.3f}s, max "
          f"{max(s for _, s in results):.3f}s, cut by the server {slow.closed_by_server}")
    assert [status for status, _ in results] == [200] * WEBHOOKS
    # None waited for a slow client to be cut (REQUEST_READ_TIMEOUT, 3 s), nor for Twilio's 5 s.
    assert p99(results) < 3.0 and max(s for _, s in results) < 5.0


@pytest.fixture(scope="module")
def nginx_binary():
    binary, why = installed_nginx()
    if not binary:
        pytest.skip(f"no nginx: {why}")
    return binary


def test_behind_nginx_64_slow_clients_do_not_delay_webhooks(tmp_path, fake_api, nginx_binary):
    """Behind the shipped site (request buffering on): 64 clients at 1 byte/s over TLS,
    and signed webhooks are still answered with a p99 under 3 s."""
    https_port = free_port()
    env = server_env(tmp_path, fake_api, PUBLIC_BASE_URL=f"https://localhost:{https_port}",
                     PROXY_COUNT="1")
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        upstream = int(server.url.rsplit(":", 1)[1])
        with nginx(nginx_binary, tmp_path / "nginx", name="localhost", upstream_port=upstream,
                   https_port=https_port) as proxy:
            tls = ssl.create_default_context(cafile=str(proxy.cert))
            with SlowClients(https_port, 64, tls=tls, host="localhost") as slow:
                assert slow.connected.wait(30)
                wait_for(lambda: slow.bytes_sent >= 64, timeout=10)  # all of them sending
                results = timed_webhooks(proxy.https_url, WEBHOOKS, verify=str(proxy.cert))
    print(f"behind nginx, 64 slow clients: p99 {p99(results):.3f}s, max "
          f"{max(s for _, s in results):.3f}s")
    assert [status for status, _ in results] == [200] * WEBHOOKS
    assert p99(results) < 3.0  # none waits for a slow client: far inside Twilio's 5 s
