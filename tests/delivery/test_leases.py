"""Leases and due times run on the database's clock: a host's skewed clock changes nothing."""

from datetime import timedelta

import pytest

from app.delivery import outbox
from app.store import models
from tests.support.outbox import the_reply
from tests.support.sending import run_until_idle, send, take
from tests.support.webhooks import post_event

HOUR = timedelta(hours=1)
_real_utcnow = models.utcnow


def skew_host_clock(monkeypatch, offset: timedelta) -> None:
    """Make the Python clock the outbox reads run `offset` off the true time."""
    def skewed():
        return _real_utcnow() + offset
    monkeypatch.setattr(models, "utcnow", skewed)
    monkeypatch.setattr(outbox, "utcnow", skewed)


def test_host_ahead_does_not_take_over_a_live_lease(app, client, sender, fake_api, monkeypatch):
    """A sender whose clock is an hour ahead leaves a reply alone while its lease is live."""
    post_event(client, fake_api.message_added())
    [held] = take(sender, 1)
    skew_host_clock(monkeypatch, HOUR)
    assert run_until_idle(sender) == 0
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sending", 1)
    send(sender, held)  # the holder settles it
    assert the_reply(app).status == "sent" and len(fake_api.created) == 1


@pytest.mark.parametrize("queued_by, sent_by", [(HOUR, timedelta(0)), (timedelta(0), -HOUR)],
                         ids=["queued-by-host-ahead", "sender-behind"])
def test_replies_are_due_at_once_whatever_the_host_clocks(
        app, client, sender, fake_api, monkeypatch, queued_by, sent_by):
    """A reply is due when queued, whichever host queued it and whichever host sends it."""
    skew_host_clock(monkeypatch, queued_by)
    post_event(client, fake_api.message_added())
    skew_host_clock(monkeypatch, sent_by)
    assert run_until_idle(sender) == 1
    assert the_reply(app).status == "sent" and len(fake_api.created) == 1


def test_retry_by_host_ahead_is_due_after_its_backoff(app, client, sender, fake_api, monkeypatch):
    """A retry recorded by a host an hour ahead is due after its backoff (0 here), not an hour."""
    fake_api.fail(1, status=503)
    post_event(client, fake_api.message_added())
    skew_host_clock(monkeypatch, HOUR)
    [item] = take(sender, 1)
    send(sender, item)
    assert the_reply(app).status == "queued"
    skew_host_clock(monkeypatch, timedelta(0))
    assert run_until_idle(sender) == 1
    assert the_reply(app).status == "sent"


def test_requeue_by_host_ahead_is_due_at_once(app, client, runner, sender, fake_api, monkeypatch):
    """A failed reply requeued on a host an hour ahead is sent at once by the others."""
    fake_api.fail(1, status=400, code=30007)  # filtered by the carrier: may go again
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    skew_host_clock(monkeypatch, HOUR)
    assert runner.invoke(args=["replies", "requeue", "--all"]).output == "requeued 1 reply\n"
    skew_host_clock(monkeypatch, timedelta(0))
    assert run_until_idle(sender) == 1
    assert the_reply(app).status == "sent"
