"""Metrics from real gunicorn workers: every worker counts, any worker's scrape adds
them all up, a killed worker's counts stay, and METRICS_PORT serves them without a token.
"""

from __future__ import annotations

import os
import re
import signal
from concurrent.futures import ThreadPoolExecutor

import requests

from tests.support.scrape import value
from tests.support.servers import free_port, gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, delivery_updated, message_added, sign

TOKEN = "system-metrics-token-0123456789abcdef"
N = 40


def base_env(tmp_path, database_url, fake_api, **extra) -> dict:
    return {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
            "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
            "DATABASE_AUTO_UPGRADE": "true", "INSTANCE_DIR": str(tmp_path / "instance"),
            "ADMIN_TOKEN": TOKEN, "LOG_LEVEL": "INFO", **extra}


def post(server, params, token=AUTH_TOKEN) -> int:
    """One webhook on a new connection (so that both workers take some)."""
    url = server.url + "/webhooks/conversations"
    return requests.post(url, data=params, timeout=10, headers={
        "X-Twilio-Signature": sign(params, url, token), "Connection": "close"}).status_code


def scrape(url: str, headers=None) -> str:
    response = requests.get(url, headers=headers, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def test_counts_add_up_across_workers_and_survive_a_killed_worker(tmp_path, database_url,
                                                                   fake_api):
    """N webhooks spread over 2 workers sum to N in every scrape, with a refused
    signature and a duplicate; after kill -9 of a worker the sum is still N."""
    shared = tmp_path / "prom"
    shared.mkdir()
    (shared / "counter_1.db").write_bytes(b"left over from a previous run")
    env = base_env(tmp_path, database_url, fake_api, PROMETHEUS_MULTIPROC_DIR=shared)
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        server.wait_workers(2)
        assert not (shared / "counter_1.db").exists()  # emptied at start
        messages = [message_added() for _ in range(N)]
        with ThreadPoolExecutor(8) as pool:
            assert list(pool.map(lambda p: post(server, p), messages)) == [200] * N
        assert post(server, messages[0]) == 200  # a duplicate
        assert post(server, message_added(), token="f" * 32) == 403
        assert post(server, delivery_updated(status="failed", error_code="30007")) == 200
        pids = {int(p) for p in re.findall(r"background work started pid=(\d+)", server.log)}
        counted = {int(f.split("_")[1].split(".")[0]) for f in os.listdir(shared)
                   if f.startswith("counter_")}
        assert counted == pids  # both workers took webhooks (and count in their file)

        url, auth = server.url + "/metrics", {"Authorization": f"Bearer {TOKEN}"}
        for _ in range(4):  # whichever worker answers the scrape, the sums are whole
            text = scrape(url, auth)
            assert value(text, "bot_webhooks_total", event_type="onMessageAdded",
                         outcome="reply_queued") == N
            assert value(text, "bot_webhooks_total", event_type="onMessageAdded",
                         outcome="duplicate") == 1
            assert value(text, "bot_webhooks_total", event_type="unverified",
                         outcome="rejected") == 1
            assert value(text, "bot_webhook_signature_failures_total", reason="mismatch") == 1
            assert value(text, "bot_decisions_total", reason="REPLY") == N
            assert value(text, "bot_delivery_receipts_total", status="failed",
                         error_code="30007") == 1
            assert value(text, "bot_webhook_duration_seconds_count") == N + 3
        # The in-process senders send everything; both are live in the registry.
        wait_for(lambda: value(scrape(url, auth), "bot_replies_pending",
                               status="queued") == 0, timeout=30, interval=0.2)
        assert value(scrape(url, auth), "bot_senders_live") == 2

        victim = sorted(pids)[0]
        os.kill(victim, signal.SIGKILL)
        wait_for(lambda: server.log.count("Booting worker") >= 3, timeout=20)
        server.wait_workers(3)
        assert post(server, message_added()) == 200
        text = scrape(url, auth)
        assert value(text, "bot_webhooks_total", event_type="onMessageAdded",
                     outcome="reply_queued") == N + 1
    assert "Traceback" not in server.log


def test_metrics_port_serves_without_token_and_main_port_needs_one(tmp_path, database_url,
                                                                   fake_api):
    """METRICS_PORT: one worker serves the scrape on loopback without a token; the
    webhook port still wants the bearer token; the default shared folder is removed
    when the server stops."""
    port = free_port()
    env = base_env(tmp_path, database_url, fake_api, METRICS_PORT=port)
    with gunicorn(env, tmp_path / "server.log", workers=2) as server:
        server.wait_workers(2)
        assert post(server, message_added()) == 200
        folder = re.search(r"metrics of all workers shared in (\S+)", server.log).group(1)
        assert os.path.isdir(folder)
        text = wait_for(lambda: _try_scrape(f"http://127.0.0.1:{port}/metrics"), timeout=15)
        assert value(text, "bot_webhooks_total", event_type="onMessageAdded",
                     outcome="reply_queued") == 1
        assert requests.get(server.url + "/metrics", timeout=5).status_code == 401
    assert not os.path.exists(folder)


def _try_scrape(url: str) -> str | None:
    try:
        return scrape(url)
    except requests.ConnectionError:
        return None
