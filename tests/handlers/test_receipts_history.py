"""Receipt history and failures that stay visible: every receipt is kept as it came,
a failed receipt's error survives a later `read`, and a reply's delivery shows any
participant's failure whatever the others got."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.services import services
from app.store.models import DeliveryReceipt, ReceiptEvent, Reply, utcnow
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, post_event


def stored(app, model, **where):
    with services(app).db.session() as s:
        return s.scalars(select(model).filter_by(**where).order_by(model.id)).all()


def our_reply(app, client, sender, fake_api):
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    return fake_api.created[-1]


def test_read_after_failed_keeps_the_failure_and_its_code(app, client):
    """failed/30003 then read: the status moves on to read, the error stays with it, and
    the history has both, in order."""
    params = delivery_updated(status="failed", error_code="30003")
    post_event(client, params)
    post_event(client, {**params, "Status": "read", "ErrorCode": "0"})
    [receipt] = stored(app, DeliveryReceipt, receipt_sid=params["DeliveryReceiptSid"])
    assert (receipt.status, receipt.error_status, receipt.error_code) == ("read", "failed", 30003)
    history = stored(app, ReceiptEvent, receipt_sid=params["DeliveryReceiptSid"])
    assert [(h.status, h.error_code) for h in history] == [("failed", 30003), ("read", 0)]
    assert {h.source for h in history} == {"webhook"}


def test_failed_after_read_is_recorded_though_read_is_kept(app, client):
    """A failure arriving late does not move the status back, but is never dropped."""
    params = delivery_updated(status="read")
    post_event(client, params)
    response = post_event(client, {**params, "Status": "undelivered", "ErrorCode": "30005"})
    assert "failure is recorded" in response.headers["X-Webhook-Outcome"]
    [receipt] = stored(app, DeliveryReceipt, receipt_sid=params["DeliveryReceiptSid"])
    assert (receipt.status, receipt.error_status, receipt.error_code) == (
        "read", "undelivered", 30005)


def test_a_duplicate_receipt_is_not_recorded_twice(app, client):
    """Also when the copy spells the status otherwise (the handler reads it in lower case)."""
    params = delivery_updated(status="delivered")
    post_event(client, params)
    post_event(client, params)
    for spelling in ("Delivered", "DELIVERED", " delivered "):
        response = post_event(client, {**params, "Status": spelling})
        assert response.headers["X-Webhook-Outcome"].startswith("duplicate"), spelling
    assert len(stored(app, ReceiptEvent, receipt_sid=params["DeliveryReceiptSid"])) == 1


@pytest.mark.parametrize("order", [("read", "failed"), ("failed", "read")])
def test_reply_shows_another_participants_failure(app, client, sender, fake_api, order):
    """One participant read the reply, another's receipt failed (30008): in either order
    the reply's delivery says failed, with 30008."""
    created = our_reply(app, client, sender, fake_api)
    for status in order:
        post_event(client, delivery_updated(
            message_sid=created.sid, conversation_sid=created.conversation_sid, status=status,
            error_code="30008" if status == "failed" else "0"))
    [reply] = stored(app, Reply)
    assert (reply.delivery_status, reply.delivery_error_code) == ("failed", 30008)


def test_reply_read_after_failing_keeps_the_code(app, client, sender, fake_api):
    """The only participant failed, then read it: delivered after all (read), the earlier
    failure's code kept on the reply."""
    created = our_reply(app, client, sender, fake_api)
    params = delivery_updated(message_sid=created.sid, conversation_sid=created.conversation_sid,
                              status="failed", error_code="30003")
    post_event(client, params)
    post_event(client, {**params, "Status": "read", "ErrorCode": "0"})
    [reply] = stored(app, Reply)
    assert (reply.delivery_status, reply.delivery_error_code) == ("read", 30003)


def test_catch_up_back_fill_records_history_the_same_way(app, client, sender, fake_api):
    """Receipts fetched by catch-up go through the same recording, marked as catch-up."""
    created = our_reply(app, client, sender, fake_api)
    fake_api.add_receipt(created.conversation_sid, created.sid, "undelivered", error_code=30003)
    with services(app).db.session() as s:
        s.execute(update(Reply).values(sent_at=utcnow() - timedelta(minutes=10)))
    services(app).catch_up.run(utcnow() - timedelta(hours=2))
    [event] = stored(app, ReceiptEvent, message_sid=created.sid)
    assert (event.status, event.error_code, event.source) == ("undelivered", 30003, "catch-up")
    [reply] = stored(app, Reply)
    assert (reply.delivery_status, reply.delivery_error_code) == ("undelivered", 30003)
