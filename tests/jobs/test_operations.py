"""Operations: failed replies are listed and requeued; old rows are pruned; jobs take turns."""

from datetime import timedelta

import pytest
from sqlalchemy import func, select, update

from app.delivery import registry
from app.jobs import periodic as jobs
from app.services import services
from app.store import models
from app.store.models import (
    Composition,
    DeliveryReceipt,
    FaqMatch,
    HourlyCount,
    JobRun,
    ModelCall,
    ProcessedEvent,
    ReceiptEvent,
    Reply,
    utcnow,
)
from tests.support.outbox import the_reply
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event


def test_failed_replies_are_listed_with_meaning_and_requeued(app, client, runner, sender, fake_api):
    fake_api.fail(2, status=400, code=30007)  # filtered: may go through another time
    post_event(client, fake_api.message_added())
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    listed = runner.invoke(args=["replies", "failed"])
    assert listed.output.count("code=30007") == 2
    assert "filtered" in listed.output
    assert fake_api.created == []

    reply_id = int(listed.output.split()[0].lstrip("#"))
    assert runner.invoke(args=["replies", "requeue", str(reply_id)]).output == "requeued 1 reply\n"
    assert run_until_idle(sender) == 1
    assert len(fake_api.created) == 1
    assert runner.invoke(args=["replies", "requeue", "--all"]).output == "requeued 1 reply\n"
    run_until_idle(sender)
    assert len(fake_api.created) == 2
    assert runner.invoke(args=["replies", "failed"]).output == "no failed replies\n"
    assert runner.invoke(args=["replies", "stats"]).output.splitlines()[0] == "sent=2"


def test_replies_stats_shows_the_backlog_and_the_senders(app, client, runner, sender):
    """A backlog: how many wait and for how long, the pace, and who is sending."""
    for _ in range(3):
        post_event(client, message_added())
    with services(app).db.transaction() as conn:
        conn.execute(update(Reply).values(created_at=utcnow() - timedelta(minutes=5)))
    lines = runner.invoke(args=["replies", "stats"]).output.splitlines()
    assert lines[0] == "queued=3"
    assert lines[1].startswith("backlog: 3 waiting, oldest queued 30")  # 300 s, give or take
    assert "sent in the last minute: 0" in lines[1]
    assert "0 live" in lines[2] and "nothing is sent" in lines[2]
    with services(app).db.transaction() as conn:
        registry.beat(conn, "host:1:ab", limit=50, held=0, in_flight=0, concurrency=25, sent=7)
    lines = runner.invoke(args=["replies", "stats"]).output.splitlines()
    assert "1 live, TWILIO_CONCURRENCY_LIMIT=50" in lines[2]
    assert lines[3].split()[:3] == ["host:1:ab", "share=50", "window=25"]


def test_requeued_reply_that_twilio_has_is_not_sent_twice(app, client, runner, sender, fake_api):
    """Failed, then requeued: the next attempt finds the reply at Twilio, not sending it
    again (here Twilio refused it in words but had created it)."""
    fake_api.fail(1, status=400, code=30007, accepted=True)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    assert (the_reply(app).status, the_reply(app).attempts) == ("failed", 1)

    assert runner.invoke(args=["replies", "requeue", "--all"]).output == "requeued 1 reply\n"
    assert run_until_idle(sender) == 1
    assert len(fake_api.created) == 1
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sent", 2)
    assert reply.twilio_message_sid == fake_api.created[0].sid


def test_lost_answers_and_failing_lookups_do_not_fail_a_reply_twilio_has(
        app, client, sender, fake_api):
    """Twilio has the reply but answered 503, and the next three lookups fail too: those
    are not attempts (they used to use up all four and leave it failed); the fourth
    lookup finds it: sent, once, no requeue needed."""
    fake_api.fail(1, status=503, accepted=True)
    fake_api.fail_reads(3, status=503)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sent", 2)
    assert len(fake_api.created) == 1 and reply.twilio_message_sid == fake_api.created[0].sid


def test_requeue_starts_a_new_round_of_attempts(app, client, runner, sender, fake_api):
    """A requeued reply gets SEND_MAX_ATTEMPTS (4) more attempts; none are forgotten."""
    fake_api.fail(4 + 3, status=503)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    assert (the_reply(app).status, the_reply(app).attempts) == ("failed", 4)

    runner.invoke(args=["replies", "requeue", "--all"])
    run_until_idle(sender)
    assert (the_reply(app).status, the_reply(app).attempts) == ("sent", 8)
    assert len(fake_api.created) == 1


def test_requeue_needs_an_id_or_all(runner):
    assert runner.invoke(args=["replies", "requeue"]).exit_code == 2
    assert runner.invoke(args=["replies", "requeue", "999"]).exit_code == 1


def test_prune_deletes_only_old_rows_and_keeps_failed_replies(app, client, runner, sender,
                                                              fake_api):
    fake_api.fail(1, status=400, code=63024)
    post_event(client, fake_api.message_added())           # -> failed reply
    post_event(client, fake_api.message_added())           # -> sent reply
    post_event(client, delivery_updated())
    run_until_idle(sender)
    old = utcnow() - timedelta(days=40)
    with services(app).db.session() as s:
        s.execute(update(ProcessedEvent).values(received_at=old))
        s.execute(update(Reply).values(created_at=old))
        s.execute(update(DeliveryReceipt).values(updated_at=old))
        s.execute(update(ReceiptEvent).values(received_at=old))
        s.add(HourlyCount(hour=old.replace(minute=0, second=0, microsecond=0),
                          name="duplicates", count=3))
        s.add(FaqMatch(message_sid="IMold", conversation_sid="CHold", outcome="decline",
                       text="a customer's question", created_at=old))
        s.add(ModelCall(conversation_sid="CHold", message_sid="IMold", called_at=old,
                        model="m", verdict="answer", raw_output="{}"))
        s.add(Composition(conversation_sid="CHold", status="idle", version=1, messages=0,
                          message_sid="IMold", author="+1", received_at=old, due_at=old,
                          attempts=0, updated_at=old))
        s.add(Composition(conversation_sid="CHwait", status="pending", version=1, messages=1,
                          message_sid="IMwait", author="+1", received_at=old, due_at=old,
                          attempts=0, updated_at=old))  # never composed: kept
    post_event(client, fake_api.message_added())           # a fresh one stays
    result = runner.invoke(args=["prune", "--older-than", "30d"])
    assert result.output == ("events=3 receipts=1 replies=1 receipt_history=1 "
                             "faq_matches=1 model_calls=1 message_texts=0 reply_texts=0 "
                             "faq_texts=0 hourly_counts=1 compositions=1\n")
    with services(app).db.session() as s:
        assert s.scalar(select(func.count()).select_from(ProcessedEvent)) == 1
        assert s.scalars(select(Reply.status).order_by(Reply.id)).all() == ["failed", "queued"]
    # 0 means now, not RETENTION (it silently kept everything younger than 30 days)
    assert runner.invoke(args=["prune", "--older-than", "0s"]).output.startswith("events=1 ")


def test_texts_are_cleared_after_message_text_retention(make_app, fake_api):
    """Past MESSAGE_TEXT_RETENTION a message keeps who wrote it, when and on which
    channel, not what it said; a sent reply loses its text, a failed one keeps it (it
    may be requeued); with 0, no inbound text is stored at all."""
    app = make_app(MESSAGE_TEXT_RETENTION="2d", RETENTION="30d")
    client = app.test_client()
    fake_api.fail(1, status=400, code=30007)
    post_event(client, fake_api.message_added(body="my card number is 4111"))  # -> failed reply
    post_event(client, fake_api.message_added(body="old news"))                 # -> sent reply
    run_until_idle(services(app).sender)
    with services(app).db.session() as s:
        s.execute(update(ProcessedEvent).values(received_at=utcnow() - timedelta(days=3)))
        s.execute(update(Reply).values(created_at=utcnow() - timedelta(days=3)))
    post_event(client, fake_api.message_added(body="fresh"))
    counts = services(app).jobs.prune()
    assert counts["message_texts"] == 2 and counts["reply_texts"] == 1
    assert counts["events"] == 0
    with services(app).db.session() as s:
        rows = s.execute(select(ProcessedEvent.body, ProcessedEvent.author,
                                ProcessedEvent.channel).order_by(ProcessedEvent.id)).all()
        assert [r.body for r in rows] == [None, None, "fresh"]
        assert all(r.author and r.channel == "SMS" for r in rows)
        kept = s.execute(select(Reply.status, Reply.body).order_by(Reply.id)).all()
        assert kept[0].status == "failed" and kept[0].body
        assert kept[1].status == "sent" and kept[1].body is None

    silent = make_app(MESSAGE_TEXT_RETENTION="0")
    post_event(silent.test_client(), message_added(body="never stored", author="+15550001111"))
    with services(silent).db.session() as s:
        row = s.execute(select(ProcessedEvent.body, ProcessedEvent.author)
                        .order_by(ProcessedEvent.id.desc()).limit(1)).one()
        assert row.body is None and row.author == "+15550001111"


def test_one_process_takes_each_turn(app):
    db = services(app).db
    assert jobs.take_turn(db, "prune", 3600) is True
    assert jobs.take_turn(db, "prune", 3600) is False
    assert jobs.take_turn(db, "catch-up", 3600) is True


def test_host_ahead_does_not_take_a_turn_taken_a_minute_ago(app, monkeypatch):
    """Turns run on the database's clock: a host an hour ahead waits like the others."""
    db = services(app).db
    assert jobs.take_turn(db, "prune", 3600) is True
    with db.session() as s:
        s.execute(update(JobRun).values(last_run_at=utcnow() - timedelta(minutes=1)))
    real = models.utcnow
    monkeypatch.setattr(jobs, "utcnow", lambda: real() + timedelta(hours=1))
    assert jobs.take_turn(db, "prune", 3600) is False
    assert jobs.take_turn(db, "prune", 30) is True  # a minute is past a 30 s interval


def test_periodic_jobs_run_when_enabled(make_app, fake_api):
    app = make_app(CATCH_UP_INTERVAL="10m", PRUNE_INTERVAL="1h")
    conversation = fake_api.add_conversation()
    fake_api.add_message(conversation, "+15550001111", "hello?")
    assert services(app).jobs.run_due() == ["prune", "catch-up"]
    assert services(app).jobs.run_due() == []
    assert run_until_idle(services(app).sender) == 1


@pytest.mark.parametrize("args", [["prune", "--older-than", "99999999999d"],
                                  ["events", "stats", "--since", "99999999999d"],
                                  ["catch-up", "--since", "99999999999d"]])
def test_commands_refuse_a_duration_past_100_years(runner, args):
    """A usage error that says why, not an OverflowError's traceback."""
    result = runner.invoke(args=args)
    assert result.exit_code == 2 and "at most 36500d" in result.output
