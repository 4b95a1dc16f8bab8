"""An attempt whose outcome is unknown (a timeout, a connection dropped mid-call, a sender
that died or stopped mid-call) is resolved at Twilio before any resend, and no resend
races a create that may still land: not before SEND_SETTLE_SECONDS after it began."""

import logging
from datetime import datetime, timedelta

import pytest
from sqlalchemy import update

from app.delivery import attempt, outbox
from app.delivery import sender as sender_module
from app.services import services
from app.store.models import Reply, utcnow
from tests.support.outbox import lease, the_reply
from tests.support.sending import run_until_idle, send, take
from tests.support.waiting import wait_for
from tests.support.webhooks import post_event

A = "CH" + "a" * 32

T = datetime(2026, 12, 3, 12, 0, 0)


@pytest.fixture(autouse=True)
def look_often(monkeypatch):
    """Look again every 0.2 s rather than 5 s: the tests wait less, and prove as much."""
    monkeypatch.setattr(attempt, "LOOK_AGAIN_SECONDS", 0.2)


def leased(unsure_after: float | None, leased_after: float | None) -> outbox.LeasedReply:
    def at(seconds):
        return None if seconds is None else T + timedelta(seconds=seconds)
    return outbox.LeasedReply(1, A, "support-bot", "Thanks!", "IM" + "1" * 32, attempt=2,
                              unsure_at=at(unsure_after), leased_at=at(leased_after))


@pytest.mark.parametrize("unsure_at, leased_at, left", [
    (None, 10, 0.0),  # no unknown outcome: send after the look-up
    (0, 10, 50.0),  # a create began 10 s ago may still land: 50 s to go
    (0, 59.5, 0.5),
    (0, 60, 0.0),  # the look-up came after the settle time: send
    (0, 600, 0.0),
    (0, None, 0.0),  # no lease time to judge by (never from lease_due)
], ids=["none", "10s-in", "half-a-second-left", "settled", "long-settled", "no-lease-time"])
def test_settle_left(unsure_at, leased_at, left):
    """Seconds a reply not found at Twilio waits before it may be sent again (60 s settle)."""
    assert attempt.settle_left(leased(unsure_at, leased_at), 60.0) == pytest.approx(left)


SETTLE = 2.5  # SEND_SETTLE_SECONDS here: well past the fake's late landings (1 s)


def app_with(make_app, **settings):
    return make_app(**{"TWILIO_HTTP_TIMEOUT": "0.3", "SEND_SETTLE_SECONDS": str(SETTLE),
                       **settings})


def first_attempt(app):
    """Lease the one reply and make its first attempt."""
    sender = services(app).sender
    [item] = take(sender, 1)
    send(sender, item)
    return item


@pytest.mark.parametrize("fault, unknown", [
    ("timeout", True), ("cut", True), ("500", True), ("504", True), ("503", False),
    ("refused", False), ("429", False),
])
def test_which_outcomes_are_unknown(make_app, fake_api, fault, unknown):
    """A timeout, a connection cut mid-answer, a 500 and a gateway's 504 leave the outcome
    unknown; a 503 (unavailable), a refused connection and a 429 do not."""
    app = app_with(make_app)
    post_event(app.test_client(), fake_api.message_added())
    if fault == "timeout":
        fake_api.latency = 0.6
        fake_api.fail(1, status=503)  # no message: only the timeout makes it unknown
    elif fault == "cut":
        fake_api.cut(1)
    elif fault in ("500", "504", "503", "429"):
        fake_api.fail(1, status=int(fault))
    else:
        fake_api.stop()
    first_attempt(app)
    reply = the_reply(app)
    assert reply.status == "queued"
    assert (reply.unsure_at is not None) is unknown


def test_a_create_landing_after_the_retrys_look_up_is_found_not_sent_again(
        make_app, fake_api, caplog):
    """The create times out at 0.3 s and lands at 1 s; the retry's first look-up finds
    nothing, so it waits and looks again, finds it, and records it sent."""
    app = app_with(make_app)
    post_event(app.test_client(), fake_api.message_added())
    asked = the_reply(app).in_reply_to
    fake_api.land_late(1.0, [asked])
    first_attempt(app)
    assert the_reply(app).unsure_at is not None and fake_api.created == []
    with caplog.at_level(logging.INFO, logger="app.delivery.attempt"):
        assert run_until_idle(services(app).sender) == 1
    reply = the_reply(app)
    assert fake_api.answers() == {asked: 1}
    assert (reply.status, reply.twilio_message_sid) == ("sent", fake_api.created[0].sid)
    assert reply.attempts == 2  # the looks that found nothing were not attempts
    assert "not sending it again while an earlier attempt may still land" in caplog.text


def test_a_create_that_never_lands_is_sent_again_once_the_settle_time_passed(
        make_app, fake_api):
    """Twilio dropped the create it was still holding when the sender gave up: the reply
    is sent again, once, and not before SEND_SETTLE_SECONDS after it began."""
    app = app_with(make_app)
    post_event(app.test_client(), fake_api.message_added())
    asked = take(services(app).sender, 1)[0]
    fake_api.land_late(0.6, [asked.in_reply_to], lands=False)
    send(services(app).sender, asked)
    assert run_until_idle(services(app).sender) == 1
    [dropped], [resent] = fake_api.dropped, fake_api.created
    assert resent.received_at - dropped.received_at >= SETTLE - 0.1
    assert the_reply(app).status == "sent" and fake_api.answers() == {asked.in_reply_to: 1}


def test_taking_over_a_lost_lease_waits_for_the_holders_create(make_app, queue, fake_api):
    """The holder died mid-call: its attempt is unknown from its lease's end. Not found
    at Twilio, the reply waits (attempt not counted); once settled it is sent. No
    create times out here: a 0.3 s timeout only made its look-up time out on a loaded
    machine (seen in CI)."""
    app = app_with(make_app, TWILIO_HTTP_TIMEOUT="2")
    queue(fake_api.add_conversation(), into=app)
    lease(app)
    lease_end = utcnow() - timedelta(seconds=0.5)
    with services(app).db.transaction() as conn:  # the holder died; its lease ran out
        conn.execute(update(Reply).values(next_attempt_at=lease_end))
    [taken] = lease(app)
    assert taken.attempt == 2 and abs(taken.unsure_at - lease_end) < timedelta(seconds=0.01)
    sender = services(app).sender
    send(sender, taken)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("queued", 1) and fake_api.created == []
    assert [m for m, _ in fake_api.requests] == ["GET"]  # it looked, and sent nothing
    # Due again in a moment, it looks until SEND_SETTLE_SECONDS after lease_end.
    wait_for(lambda: run_until_idle(sender) == 1, timeout=10, interval=0.05)
    assert the_reply(app).status == "sent" and len(fake_api.created) == 1
    assert fake_api.created[0].at - fake_api.created[0].received_at < 1  # sent, not held
    assert utcnow() >= lease_end + timedelta(seconds=SETTLE)


def test_a_failed_reply_requeued_while_unsure_still_waits(make_app, fake_api):
    """The last attempt of a round times out and fails; requeued at once, the next
    attempt still waits for that create, finds it when it lands, and sends nothing."""
    app = app_with(make_app, SEND_MAX_ATTEMPTS="1")
    post_event(app.test_client(), fake_api.message_added())
    asked = take(services(app).sender, 1)[0]
    fake_api.land_late(1.0, [asked.in_reply_to])
    send(services(app).sender, asked)
    assert the_reply(app).status == "failed" and the_reply(app).unsure_at is not None
    with services(app).db.transaction() as conn:
        assert outbox.requeue_failed(conn) == 1
    run_until_idle(services(app).sender)
    wait_for(lambda: fake_api.in_flight == 0)  # nothing still held that could land
    assert the_reply(app).status == "sent" and fake_api.answers() == {asked.in_reply_to: 1}


def test_a_sender_stopped_during_the_create_leaves_it_unknown(make_app, queue, fake_api,
                                                              monkeypatch):
    """Stopping, the sender gives a create still held at Twilio no more than its grace
    period: the reply is queued again as unknown, and found once the create lands."""
    monkeypatch.setattr(sender_module, "STOP_GRACE_SECONDS", 0.2)
    app = make_app(SENDER_IN_PROCESS="true")
    asked = queue(fake_api.add_conversation(), into=app)  # no request: nothing started yet
    fake_api.land_late(1.5, [asked])
    services(app).supervisor.start()
    try:
        wait_for(lambda: asked in fake_api.holding)
    finally:
        services(app).supervisor.stop()
    reply = the_reply(app)
    assert reply.status == "queued" and reply.unsure_at is not None
    assert reply.error_message == "sender stopped while the call was in flight"
    wait_for(lambda: fake_api.created)  # Twilio made it after the sender let go
    run_until_idle(services(app).sender)
    assert the_reply(app).status == "sent" and fake_api.answers() == {asked: 1}


def test_look_ups_that_fail_are_not_attempts(make_app, fake_api):
    """The create timed out (it lands at 1 s); then Twilio's listing fails six times in a
    row (503): those looks are not attempts (SEND_MAX_ATTEMPTS is 4 here), so the reply
    is not marked failed, and once Twilio answers again it is found, sent once."""
    app = app_with(make_app)
    post_event(app.test_client(), fake_api.message_added())
    asked = the_reply(app).in_reply_to
    fake_api.land_late(1.0, [asked])
    first_attempt(app)
    fake_api.fail_reads(6)
    sender = services(app).sender
    for _ in range(6):
        [item] = take(sender, 1)
        send(sender, item)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("queued", 1)
    assert "could not look for it at Twilio" in reply.error_message
    assert run_until_idle(sender) == 1
    assert the_reply(app).status == "sent" and fake_api.answers() == {asked: 1}
