"""Outbox: one reply per message, in one statement; one reply of a conversation at a time."""

import secrets
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, select, update

from app.delivery import outbox
from app.services import services
from app.store.models import ProcessedEvent, Reply, utcnow
from tests.support.outbox import lease
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event

A, B = "CH" + "a" * 32, "CH" + "b" * 32


def test_replay_after_retention_keeps_the_one_failed_reply(make_app, fake_api):
    """Retention pruned the event but kept its failed reply: a replay is a 200, nothing resent."""
    app = make_app(AUTO_REPLY_COOLDOWN="0")  # the replay is decided again: let it reply
    client, sender = app.test_client(), services(app).sender
    fake_api.fail(1, status=400, code=63024)  # invalid recipient: permanent
    params = fake_api.message_added()
    post_event(client, params)
    run_until_idle(sender)
    with services(app).db.session() as s:
        s.execute(delete(ProcessedEvent))  # as retention does; failed replies stay

    response = post_event(client, params)
    assert response.status_code == 200
    assert ("a reply to this message exists already (failed): not queued again"
            in response.headers["X-Webhook-Outcome"])
    with services(app).db.session() as s:
        assert s.scalars(select(Reply.status)).all() == ["failed"]
    assert run_until_idle(sender) == 0
    assert fake_api.created == [] and len(fake_api.requests) == 1


def test_queue_reply_is_one_statement_and_keeps_every_field(app):
    """The webhook's hot path writes the whole reply in one statement."""
    db = services(app).db
    written = utcnow() - timedelta(minutes=5)
    statements = []

    def count(conn, cursor, statement, *args):
        statements.append(statement)

    event.listen(db.engine, "before_cursor_execute", count)
    try:
        with db.transaction() as conn:
            statements.clear()
            note = outbox.queue_reply(conn, outbox.NewReply(
                conversation_sid=A, in_reply_to="IM" + "1" * 32, author="support-bot",
                body=None, content_sid="HX" + "c" * 32, content_variables='{"1": "Ada"}',
                customer="whatsapp:+15558675310", participant_sid="MB" + "d" * 32,
                channel="WHATSAPP", message_at=written))
            queued = len(statements)
    finally:
        event.remove(db.engine, "before_cursor_execute", count)
    assert note is None and queued == 1
    with db.session() as s:
        reply = s.scalars(select(Reply)).one()
    assert (reply.body, reply.content_sid, reply.content_variables) == (
        None, "HX" + "c" * 32, '{"1": "Ada"}')
    assert (reply.customer, reply.participant_sid, reply.channel, reply.message_at) == (
        "whatsapp:+15558675310", "MB" + "d" * 32, "WHATSAPP", written)


# -- order within a conversation ----------------------------------------------------

def settle(app, mark, item, *args):
    with services(app).db.transaction() as conn:
        assert mark(conn, item, *args)


def test_a_batch_holds_the_earliest_reply_of_each_conversation(app, queue):
    """Three replies queued in A and one in B: one lease of 8 takes A's first and B's."""
    a1, _a2, _a3 = queue(A), queue(A), queue(A)
    b1 = queue(B)
    assert sorted(item.in_reply_to for item in lease(app)) == sorted([a1, b1])
    assert lease(app) == []


def test_later_reply_waits_until_the_earlier_is_sent(app, queue):
    """The second reply of a conversation is leased only once the first is settled."""
    a1, a2 = queue(A), queue(A)
    [first] = lease(app)
    assert first.in_reply_to == a1 and lease(app) == []
    settle(app, outbox.mark_sent, first, "IM" + "9" * 32)
    assert [item.in_reply_to for item in lease(app)] == [a2]


def test_retry_holds_later_replies_back_and_failure_releases_them(app, queue):
    """A reply waiting for its retry keeps its place; once it failed, the next one goes."""
    _a1, a2 = queue(A), queue(A)
    [first] = lease(app)
    settle(app, outbox.mark_retry, first, 60.0, 503, "fake failure")
    assert lease(app) == []  # a1 is not due for a minute, and a2 must not overtake it
    with services(app).db.transaction() as conn:
        conn.execute(update(Reply).where(Reply.id == first.id).values(status="failed"))
    assert [item.in_reply_to for item in lease(app)] == [a2]


def test_a_live_lease_blocks_even_an_earlier_reply(app, queue):
    """An earlier reply requeued while a later one is in flight waits for it."""
    a1, _a2 = queue(A), queue(A)
    [first] = lease(app)
    settle(app, outbox.mark_failed, first, 30007, "filtered by the carrier")
    [second] = lease(app)  # a1 failed: a2 goes
    with services(app).db.transaction() as conn:
        assert outbox.requeue_failed(conn) == 1
    assert lease(app) == []  # a2 is in flight
    settle(app, outbox.mark_sent, second, "IM" + "9" * 32)
    assert [item.in_reply_to for item in lease(app)] == [a1]


def test_lost_lease_is_taken_over_before_later_replies(app, queue):
    """A sender died holding a1: a1 is taken over when its lease ends, a2 waits for it."""
    a1, a2 = queue(A), queue(A)
    [first] = lease(app)
    with services(app).db.transaction() as conn:  # its lease runs out
        conn.execute(update(Reply).where(Reply.id == first.id)
                     .values(next_attempt_at=utcnow() - timedelta(hours=1)))
    assert lease(app, expired=False) == []  # a2 waits even when nobody looks for lost leases
    [taken] = lease(app)
    assert (taken.in_reply_to, taken.attempt) == (a1, 2)
    assert lease(app) == []
    settle(app, outbox.mark_sent, taken, "IM" + "9" * 32)
    assert [item.in_reply_to for item in lease(app)] == [a2]


def test_concurrent_leases_never_take_two_of_one_conversation(app, queue, database_url):
    """PostgreSQL: while one sender's lease is uncommitted, another takes nothing of A."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite admits one writer at a time: the leases cannot overlap")
    queue(A), queue(A)
    b1 = queue(B)
    engine = services(app).db.engine
    with engine.connect() as first, engine.connect() as second:
        with first.begin():
            one = outbox.lease_due(first, 1, 60)  # the earliest due: A's first
            with second.begin():
                other = outbox.lease_due(second, 8, 60)
        assert [item.conversation_sid for item in one] == [A]
        assert [item.in_reply_to for item in other] == [b1]


def test_a_lease_of_one_takes_one_whatever_the_planner_knows(app, queue, database_url):
    """PostgreSQL, once the replies table had been analysed while it held a row or so:
    the planner ran the due subquery again for each row it scanned, and LIMIT 1 leased
    two replies, A's first and B's (a review reproduced it; the tests' database then
    kept its statistics between tests)."""
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's planner")
    queue(A)
    with services(app).db.transaction() as conn:
        conn.exec_driver_sql("ANALYZE replies")
        conn.execute(delete(Reply))
    queue(A), queue(A), queue(B)
    with services(app).db.transaction() as conn:
        leased = outbox.lease_due(conn, 1, 60)
    assert [item.conversation_sid for item in leased] == [A]


def test_a_lost_lease_waits_for_a_requeued_earlier_reply(app, queue):
    """a2's sender died after a1 was requeued: a1 goes first, a2 is taken over after it."""
    a1, a2 = queue(A), queue(A)
    [first] = lease(app)
    settle(app, outbox.mark_failed, first, 30007, "filtered by the carrier")
    [second] = lease(app)
    with services(app).db.transaction() as conn:
        assert outbox.requeue_failed(conn) == 1
        conn.execute(update(Reply).where(Reply.id == second.id)
                     .values(next_attempt_at=utcnow() - timedelta(hours=1)))
    [again] = lease(app)
    assert again.in_reply_to == a1 and lease(app) == []
    settle(app, outbox.mark_sent, again, "IM" + "9" * 32)
    [taken] = lease(app)
    assert (taken.in_reply_to, taken.attempt) == (a2, 2)


def test_a_conversation_gets_at_most_30_creates_a_second(app, queue):
    """Twilio takes 30 message creates per second per conversation: the next reply of a
    conversation is not due until 1/30 s after the last was sent; others go at once."""
    a1, a2, b1 = queue(A), queue(A), queue(B)
    first = lease(app, pace=outbox.PACE_SECONDS)
    assert sorted(i.in_reply_to for i in first) == sorted([a1, b1])
    for item in first:
        settle(app, outbox.mark_sent, item, "IM" + secrets.token_hex(16))
    with services(app).db.transaction() as conn:
        assert outbox.lease_due(conn, 8, 60, pace=3600) == []  # a2: too soon after a1
        [second] = outbox.lease_due(conn, 8, 60, pace=0.0)
    assert second.in_reply_to == a2


def test_a_receipt_that_came_before_the_send_was_recorded_is_kept(app, client):
    """Twilio may post a receipt before the sender has recorded the MessageSid it got:
    once recorded, the reply says what that receipt said (here, undelivered 30003)."""
    post_event(client, message_added(conversation_sid=A))
    db = services(app).db
    with db.transaction() as conn:
        [leased] = outbox.lease_due(conn, 1, 60)
    sid = "IM" + secrets.token_hex(16)
    post_event(client, delivery_updated(message_sid=sid, conversation_sid=A,
                                        status="undelivered", error_code="30003"))
    with db.transaction() as conn:
        assert outbox.mark_sent(conn, leased, sid)
    with db.session() as s:
        reply = s.scalars(select(Reply)).one()
        assert (reply.delivery_status, reply.delivery_error_code) == ("undelivered", 30003)
