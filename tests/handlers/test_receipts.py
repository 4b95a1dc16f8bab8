"""Delivery receipts: logged with their meaning, stored, never moved backwards."""

import logging

import pytest
from sqlalchemy import select

from app.services import services
from app.store.models import DeliveryReceipt, Reply
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event


def receipt(app, receipt_sid):
    with services(app).db.session() as s:
        return s.scalars(select(DeliveryReceipt).filter_by(receipt_sid=receipt_sid)).one()


def test_receipt_is_logged_as_one_structured_line(client, caplog):
    """One line with every identifier, the status, the error code and its meaning."""
    caplog.set_level(logging.INFO, logger="app.handlers.receipts")
    params = delivery_updated(status="delivered")
    post_event(client, params)
    [record] = [r for r in caplog.records if r.name == "app.handlers.receipts"]
    line = record.getMessage()
    assert record.levelno == logging.INFO
    for name in ("ConversationSid", "MessageSid", "ParticipantSid", "ChannelMessageSid"):
        assert f"{name}={params[name]}" in line
    assert "Status=delivered" in line and "ErrorCode=0" in line


@pytest.mark.parametrize("status, code, meaning", [
    ("failed", "30007", "filtered by the carrier as spam"),
    ("undelivered", "30003", "unreachable destination handset"),
    ("undelivered", "63016", "24-hour window"),
    ("failed", "39999", "twilio.com/docs/api/errors/39999"),
])
def test_failed_and_undelivered_are_warnings_with_meaning(client, caplog, status, code, meaning):
    caplog.set_level(logging.INFO, logger="app.handlers.receipts")
    post_event(client, delivery_updated(status=status, error_code=code))
    [record] = [r for r in caplog.records if r.name == "app.handlers.receipts"]
    assert record.levelno == logging.WARNING
    assert f"ErrorCode={code}" in record.getMessage()
    assert meaning in record.getMessage()


@pytest.mark.parametrize("final", ["delivered", "read", "failed", "undelivered"])
def test_late_sent_never_overwrites_a_later_status(app, client, final):
    """Receipts arrive out of order: 'sent' after '<final>' leaves '<final>' stored."""
    params = delivery_updated(status=final, error_code="30003" if final in ("failed", "undelivered") else "0")
    post_event(client, params)
    response = post_event(client, {**params, "Status": "sent", "ErrorCode": "0"})
    assert response.status_code == 200
    assert "kept" in response.headers["X-Webhook-Outcome"]
    stored = receipt(app, params["DeliveryReceiptSid"])
    assert stored.status == final


def test_status_moves_forward(app, client):
    params = delivery_updated(status="sent")
    for status in ("sent", "delivered", "read"):
        post_event(client, {**params, "Status": status})
    assert receipt(app, params["DeliveryReceiptSid"]).status == "read"


def test_receipt_for_our_reply_updates_the_reply(app, client, sender, fake_api):
    """The receipt of a bot reply (webhooks enabled on send) shows on the reply."""
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    [created] = fake_api.created
    params = delivery_updated(message_sid=created.sid, conversation_sid=created.conversation_sid,
                              status="delivered")
    post_event(client, params)
    post_event(client, {**params, "Status": "sent"})
    with services(app).db.session() as s:
        reply = s.scalars(select(Reply)).one()
    assert reply.delivery_status == "delivered"


@pytest.mark.parametrize("status", ["x\r\nSet-Cookie:a", "délivré ✓", "x\x1b[31m"])
def test_untrusted_status_cannot_forge_a_header_or_a_log_line(client, caplog, status):
    """A signed receipt with control or non-Latin-1 characters in Status gets a 2xx; the
    outcome header and the log lines carry them escaped, never raw."""
    caplog.set_level(logging.INFO)
    params = delivery_updated(status=status)
    response = post_event(client, params)
    assert response.status_code == 200
    header = response.headers["X-Webhook-Outcome"]
    assert header.isascii() and header.isprintable()
    assert "Set-Cookie" not in response.headers
    for record in caplog.records:
        line = record.getMessage()
        assert "\r" not in line and "\n" not in line and "\x1b" not in line
    assert any("\\x0d" in r.getMessage() or "\\u" in r.getMessage() or "\\x1b" in r.getMessage()
               for r in caplog.records if r.name == "app.handlers.receipts")


def test_untrusted_author_cannot_forge_a_log_line(client, caplog):
    """A carriage return in Author or EventType reaches the log escaped."""
    caplog.set_level(logging.INFO)
    response = post_event(client, message_added(author="+1555\r2026-01-01 INFO forged"))
    assert response.status_code == 200
    lines = [r.getMessage() for r in caplog.records]
    assert not any("\r" in line for line in lines)
    assert any("+1555\\x0d2026-01-01" in line for line in lines)
