"""GET /metrics through the app: who may read it, and that what happened is counted.

Counters are per process and shared by every app a test builds, so each test reads
the scrape before and after and compares.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import insert

from app.observability import metrics
from app.services import services
from app.store.models import SenderHeartbeat, utcnow
from tests.support.scrape import value
from tests.support.webhooks import delivery_updated, message_added, post_event

TOKEN = "metrics-test-token-0123456789abcdef"
BEARER = {"Authorization": f"Bearer {TOKEN}"}


@pytest.fixture
def app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN)


@pytest.fixture
def scrape(client):
    def read() -> str:
        response = client.get("/metrics", headers=BEARER)
        assert response.status_code == 200, response.text
        assert response.content_type.startswith("text/plain")
        return response.text
    return read


def test_no_admin_token_no_metrics_page(make_app):
    """Without ADMIN_TOKEN the page does not exist, token or not."""
    client = make_app().test_client()
    assert client.get("/metrics").status_code == 404
    assert client.get("/metrics", headers=BEARER).status_code == 404


@pytest.mark.parametrize("header", [None, "Bearer wrong-token", f"Basic {TOKEN}", TOKEN,
                                    f"Bearer {TOKEN}x"])
def test_wrong_or_missing_token_is_401(client, header):
    """Anything but `Bearer <ADMIN_TOKEN>` is refused, and says how to ask."""
    response = client.get("/metrics", headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert TOKEN not in response.text


def test_webhooks_counted_by_event_type_and_outcome(client, scrape):
    """A reply queued, its duplicate and a refused signature are each counted once."""
    before = scrape()
    params = message_added()
    assert post_event(client, params).status_code == 200
    assert post_event(client, params).headers["X-Webhook-Outcome"] == "duplicate"
    assert post_event(client, message_added(), token="f" * 32).status_code == 403
    assert post_event(client, message_added(), headers={"X-Twilio-Signature": ""}
                      ).status_code == 403
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("bot_webhooks_total", event_type="onMessageAdded",
                 outcome="reply_queued") == 1
    assert delta("bot_webhooks_total", event_type="onMessageAdded", outcome="duplicate") == 1
    assert delta("bot_webhooks_total", event_type="unverified", outcome="rejected") == 2
    assert delta("bot_webhook_signature_failures_total", reason="mismatch") == 1
    assert delta("bot_webhook_signature_failures_total", reason="missing") == 1
    assert delta("bot_decisions_total", reason="REPLY") == 1  # the duplicate decides nothing
    assert delta("bot_webhook_duration_seconds_count") == 4


def test_decisions_by_reason(client, scrape):
    """Silence is counted with its reason: an agent's message, then the cooldown."""
    before = scrape()
    conversation = message_added()["ConversationSid"]
    post_event(client, message_added(conversation_sid=conversation, author="alice@support"))
    post_event(client, message_added(conversation_sid=conversation))
    after = scrape()
    assert (value(after, "bot_decisions_total", reason="AGENT_MESSAGE")
            - value(before, "bot_decisions_total", reason="AGENT_MESSAGE")) == 1
    assert (value(after, "bot_decisions_total", reason="AGENT_ACTIVE")
            - value(before, "bot_decisions_total", reason="AGENT_ACTIVE")) == 1


def test_delivery_receipts_by_status_and_error_code(client, scrape):
    """Receipts are counted by Status and ErrorCode; a replayed receipt is not."""
    before = scrape()
    failed = delivery_updated(status="undelivered", error_code="30003")
    post_event(client, failed)
    post_event(client, failed)  # the same receipt again: a duplicate
    post_event(client, delivery_updated(status="delivered", error_code="0"))
    for code in ("12345", "99999"):  # numbers Twilio does not document: one series
        post_event(client, delivery_updated(status="failed", error_code=code))
    after = scrape()
    assert (value(after, "bot_delivery_receipts_total", status="failed", error_code="other")
            - value(before, "bot_delivery_receipts_total", status="failed",
                    error_code="other")) == 2
    assert (value(after, "bot_delivery_receipts_total", status="undelivered",
                  error_code="30003")
            - value(before, "bot_delivery_receipts_total", status="undelivered",
                    error_code="30003")) == 1
    assert (value(after, "bot_delivery_receipts_total", status="delivered", error_code="")
            - value(before, "bot_delivery_receipts_total", status="delivered",
                    error_code="")) == 1


def test_backlog_and_oldest_pending_reply_from_the_database(app, client, scrape):
    """Replies waiting in the outbox (no sender runs here) show as the queue's depth."""
    assert value(scrape(), "bot_database_up") == 1
    assert value(scrape(), "bot_replies_pending", status="queued") == 0
    for _ in range(3):
        post_event(client, message_added())
    text = scrape()
    assert value(text, "bot_replies_pending", status="queued") == 3
    assert value(text, "bot_replies_pending", status="sending") == 0
    assert 0 <= value(text, "bot_replies_oldest_pending_age_seconds") < 60


def test_sending_concurrency_sums_live_senders_only(app, scrape):
    """Senders whose heartbeat is older than SEND_LEASE are dead and not counted."""
    lease = services(app).settings.sender.lease_seconds
    now = utcnow()
    with services(app).db.engine.begin() as conn:
        conn.execute(insert(SenderHeartbeat), [
            dict(id="a", heartbeat_at=now, concurrency=8, in_flight=3, sent=10, share=8),
            dict(id="b", heartbeat_at=now, concurrency=4, in_flight=1, sent=2, share=4),
            dict(id="dead", heartbeat_at=now - timedelta(seconds=lease + 60),
                 concurrency=50, in_flight=50, sent=1, share=50)])
    text = scrape()
    assert value(text, "bot_senders_live") == 2
    assert value(text, "bot_sender_concurrency") == 12
    assert value(text, "bot_sender_in_flight") == 4


def test_sender_api_counts_replies(scrape):
    """The calls the sender makes show up in the scrape: sent with latency, failed by
    code, retried."""
    before = scrape()
    metrics.reply_sent(0.4)
    metrics.reply_sent(-1.0)  # a clock step back counts as 0, not negative
    metrics.reply_failed(21610)
    metrics.reply_failed(None)
    metrics.reply_retried()
    after = scrape()

    def delta(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("bot_replies_sent_total") == 2
    assert delta("bot_reply_latency_seconds_count") == 2
    assert delta("bot_reply_latency_seconds_sum") == pytest.approx(0.4)
    assert delta("bot_reply_latency_seconds_bucket", le="0.5") == 2
    assert delta("bot_replies_failed_total", error_code="21610") == 1
    assert delta("bot_replies_failed_total", error_code="") == 1
    assert delta("bot_replies_retried_total") == 1


def test_database_down_still_answers_the_scrape(make_app):
    """With the database unreachable, counters are still served and bot_database_up is 0."""
    app = make_app(ADMIN_TOKEN=TOKEN, DATABASE_URL="postgresql://postgres@127.0.0.1:1/none",
                   DATABASE_AUTO_UPGRADE="false")
    response = app.test_client().get("/metrics", headers=BEARER)
    assert response.status_code == 200
    assert value(response.text, "bot_database_up") == 0
    assert "bot_webhooks_total" in response.text


def test_the_shared_folder_is_emptied_of_metric_files_only(tmp_path, monkeypatch):
    """PROMETHEUS_MULTIPROC_DIR pointed at the database's folder once deleted the SQLite
    database (every *.db) at each start: only prometheus_client's own files go."""
    from app.observability import multiprocess

    # prepare() exports the folder: set through monkeypatch first, so that it is undone
    # (a delenv of an unset name records nothing, and later scrapes read these files).
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(tmp_path))
    for name in ("counter_812.db", "gauge_livesum_812.db", "histogram_9.db", "bot.db",
                 "counter.db", "notes.db", "counter_812.db-journal"):
        (tmp_path / name).write_bytes(b"x")
    multiprocess.prepare({"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)})
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "bot.db", "counter.db", "counter_812.db-journal", "notes.db"]


def test_a_metrics_address_that_cannot_be_opened_is_a_warning(caplog):
    """METRICS_HOST not on this machine: metrics were never served and nothing said why
    (only a port busy with another worker's server is quiet)."""
    import logging

    from app.observability.exposition import MetricsPort
    from tests.support.servers import free_port
    from tests.support.waiting import wait_for

    caplog.set_level(logging.DEBUG, logger="app.observability.exposition")
    MetricsPort(None, None, "192.0.2.1", free_port(), retry=3600).start()  # TEST-NET-1
    wait_for(lambda: any("cannot be opened" in r.getMessage() for r in caplog.records),
             timeout=10)
    [record] = [r for r in caplog.records if "metrics port" in r.getMessage()]
    assert record.levelno == logging.WARNING and "host=192.0.2.1" in record.getMessage()
