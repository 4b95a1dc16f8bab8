"""Idempotency: a retried, replayed or concurrent duplicate webhook changes nothing."""

import threading

from sqlalchemy import func, select

from app.cli import sample_events
from app.services import services
from app.store.models import DeliveryReceipt, ProcessedEvent, Reply
from tests.support.sending import run_until_idle
from tests.support.webhooks import ACCOUNT_SID, delivery_updated, post_event


def count(app, model):
    with services(app).db.session() as s:
        return s.scalar(select(func.count()).select_from(model))


def test_same_message_sid_is_answered_once(app, client, sender, fake_api):
    """Twilio may deliver the same message twice (new token each time): one reply only."""
    params = fake_api.message_added()
    first = post_event(client, params)
    second = post_event(client, params)  # a fresh idempotency token, same MessageSid
    assert (first.status_code, second.status_code) == (200, 200)
    assert second.headers["X-Webhook-Outcome"] == "duplicate"
    assert run_until_idle(sender) == 1
    assert len(fake_api.created) == 1
    assert count(app, Reply) == 1


def test_replay_after_the_reply_was_sent_sends_nothing(app, client, sender, fake_api):
    """A captured request replayed later (signatures never expire) is a no-op."""
    params = fake_api.message_added()
    post_event(client, params)
    run_until_idle(sender)
    assert post_event(client, params).headers["X-Webhook-Outcome"] == "duplicate"
    assert run_until_idle(sender) == 0
    assert len(fake_api.created) == 1


def test_same_idempotency_token_counts_once(app, client):
    """Other events are keyed on I-Twilio-Idempotency-Token."""
    params = sample_events.build("onParticipantAdded", account_sid=ACCOUNT_SID)
    token = {"I-Twilio-Idempotency-Token": "4f8a2c1e-0000-4000-8000-000000000001"}

    from app.pipeline.outcome import Kind, Outcome
    from app.pipeline.router import Router
    seen = []
    router = Router()
    router.register("onParticipantAdded")(
        lambda event, ctx: ctx.on_claim(lambda conn: seen.append(event)) or Outcome(Kind.IGNORED, "noted"))
    services(app).processor.router.add(router)

    first = post_event(client, params, headers=token)
    second = post_event(client, params, headers=token)
    assert (first.headers["X-Webhook-Outcome"], second.headers["X-Webhook-Outcome"]) == (
        "ignored: noted", "duplicate")
    assert len(seen) == 1  # the handler's writes ran once
    assert count(app, ProcessedEvent) == 1


def test_same_receipt_and_status_counts_once(app, client):
    """(DeliveryReceiptSid, Status) is the key: a repeat is a duplicate, a new status is not."""
    params = delivery_updated(status="sent")
    post_event(client, params)
    assert post_event(client, params).headers["X-Webhook-Outcome"] == "duplicate"
    delivered = {**params, "Status": "delivered"}
    assert post_event(client, delivered).headers["X-Webhook-Outcome"] == "receipt delivered"
    assert count(app, ProcessedEvent) == 2
    assert count(app, DeliveryReceipt) == 1


def test_concurrent_duplicates_get_2xx_and_one_reply(app, sender, fake_api):
    """Ten copies of one webhook at the same instant: all 2xx, exactly one reply."""
    params = fake_api.message_added()
    barrier = threading.Barrier(10)
    statuses = []

    def deliver():
        client = app.test_client()
        barrier.wait()
        statuses.append(post_event(client, params).status_code)

    threads = [threading.Thread(target=deliver) for _ in range(10)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert statuses == [200] * 10
    assert run_until_idle(sender) == 1
    assert len(fake_api.created) == 1
    assert count(app, ProcessedEvent) == 1
