"""Catch-up: messages missed while the server was down are answered once, late receipts fetched."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.services import services
from app.store.models import ProcessedEvent, Reply, utcnow
from tests.support.sending import run_until_idle
from tests.support.webhooks import message_added, post_event


def run(app, hours=2):
    return services(app).catch_up.run(utcnow() - timedelta(hours=hours))


def test_missed_customer_message_is_answered_once(app, sender, fake_api):
    """A message whose webhook never arrived gets its reply; a second catch-up adds nothing."""
    conversation = fake_api.add_conversation()
    missed = fake_api.add_message(conversation, "+15550001111", "anyone there?")
    report = run(app)
    assert report.replies_queued == 1
    run_until_idle(sender)
    [created] = fake_api.created
    assert created.conversation_sid == conversation
    assert f'"inReplyTo": "{missed["sid"]}"' in created.form["Attributes"]
    assert run(app).replies_queued == 0
    assert run_until_idle(sender) == 0


def test_messages_seen_by_webhook_are_not_answered_again(app, client, sender, fake_api):
    """Catch-up and webhooks share one claim key: the MessageSid."""
    conversation = fake_api.add_conversation()
    message = fake_api.add_message(conversation, "+15550001111", "hello")
    post_event(client, message_added(conversation_sid=conversation, message_sid=message["sid"]))
    run_until_idle(sender)
    assert run(app).replies_queued == 0
    run_until_idle(sender)
    assert len(fake_api.created) == 1


def test_webhook_arriving_after_catch_up_is_a_duplicate(app, client, sender, fake_api):
    conversation = fake_api.add_conversation()
    message = fake_api.add_message(conversation, "+15550001111", "hello")
    run(app)
    response = post_event(client, message_added(conversation_sid=conversation,
                                                message_sid=message["sid"]))
    assert response.headers["X-Webhook-Outcome"] == "duplicate"


@pytest.mark.parametrize("author, later", [
    ("alice@support", "Looking into it now"),
    # Read newest first, STOP was processed before the question it followed, which then
    # got a reply sent after the customer's STOP.
    ("+15550001111", "STOP"),
])
def test_message_already_answered_by_an_agent_is_left_alone(app, sender, fake_api, author,
                                                            later):
    """If an agent (or the bot) wrote after the customer, the customer is not answered
    late; nor if the customer sent STOP after it."""
    conversation = fake_api.add_conversation()
    fake_api.add_message(conversation, "+15550001111", "my parcel is late")
    fake_api.add_message(conversation, author, later)
    report = run(app)
    assert (report.replies_queued, report.answered_already) == (0, 1)
    assert run_until_idle(sender) == 0
    with services(app).db.session() as s:
        outcomes = s.scalars(select(ProcessedEvent.outcome)).all()
    assert any("answered later" in o for o in outcomes)


def test_old_messages_are_outside_the_window(app, sender, fake_api, monkeypatch):
    conversation = fake_api.add_conversation()
    fake_api.add_message(conversation, "+15550001111", "yesterday")
    report = services(app).catch_up.run(utcnow() + timedelta(minutes=5))  # window starts after it
    assert report.replies_queued == 0


def test_missing_receipts_are_fetched(app, client, sender, fake_api):
    """A reply sent but never confirmed gets its delivery receipts through the REST API."""
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    [created] = fake_api.created
    fake_api.add_receipt(created.conversation_sid, created.sid, "delivered")
    with services(app).db.session() as s:  # sent a while ago, no receipt since
        s.execute(update(Reply).values(sent_at=utcnow() - timedelta(minutes=10)))
    report = run(app)
    assert report.receipts_fetched == 1
    with services(app).db.session() as s:
        assert s.scalars(select(Reply.delivery_status)).one() == "delivered"


def test_catch_up_command(runner, fake_api):
    conversation = fake_api.add_conversation()
    fake_api.add_message(conversation, "+15550001111", "hello?")
    result = runner.invoke(args=["catch-up", "--since", "2h"])
    assert result.exit_code == 0, result.output
    assert "replies_queued=1" in result.output
    bad = runner.invoke(args=["catch-up", "--since", "soon"])
    assert bad.exit_code != 0 and "duration" in bad.output


def test_catch_up_command_reports_api_errors(runner, fake_api):
    fake_api.stop()
    result = runner.invoke(args=["catch-up"])
    assert result.exit_code == 1 and "Twilio API" in result.output


def unconfirmed_replies(app, fake_api, count, minutes_ago=10):
    """Store `count` replies sent a while ago, in a conversation that exists at the fake
    API, that never got a receipt."""
    fake_api.add_conversation("CH" + "c" * 32)
    sent_at = utcnow() - timedelta(minutes=minutes_ago)
    with services(app).db.session() as s:
        s.add_all(Reply(in_reply_to=f"IM{n:032x}", conversation_sid="CH" + "c" * 32,
                        author="support-bot", body="hi", status="sent", attempts=1,
                        twilio_message_sid=f"IM{n + 10**6:032x}", sent_at=sent_at)
                  for n in range(count))


def receipt_requests(fake_api):
    return [path for _, path in fake_api.requests if path.endswith("/Receipts")]


def test_receipts_of_a_reply_are_asked_for_once(app, fake_api):
    """A reply that never gets receipts (a chat participant) costs one API call, not one
    per run."""
    unconfirmed_replies(app, fake_api, 1)
    assert run(app).receipts_checked == 1
    assert run(app).receipts_checked == 0
    assert len(receipt_requests(fake_api)) == 1


def test_receipt_back_fill_is_bounded_per_run(app, fake_api):
    """A large backlog is worked off RECEIPT_CHECKS replies at a time, oldest first."""
    from app.jobs.catchup import RECEIPT_CHECKS

    unconfirmed_replies(app, fake_api, RECEIPT_CHECKS + 3)
    assert run(app).receipts_checked == RECEIPT_CHECKS
    assert run(app).receipts_checked == 3
    assert len(receipt_requests(fake_api)) == RECEIPT_CHECKS + 3


def test_a_message_catch_up_cannot_store_is_skipped_not_fatal(app, sender, fake_api):
    """A message with a field too long to store is counted as a failure; the others are
    still answered."""
    conversation = fake_api.add_conversation()
    fake_api.add_message(conversation, "+1" + "5" * 300, "an odd author")
    fake_api.add_message(conversation, "+15550001111", "hello")
    report = run(app)
    assert (report.replies_queued, report.failures) == (1, 1)


def test_a_listed_conversation_sid_of_the_wrong_shape_is_skipped(app, sender, fake_api):
    """Catch-up puts the SIDs Twilio lists into URLs too: one of the wrong shape is a
    failure of that conversation, never a call to another path; the others go on."""
    fake_api.add_conversation("CH" + "a" * 32 + "/../../Services/IS" + "b" * 32)
    conversation = fake_api.add_conversation()
    fake_api.add_message(conversation, "+15550001111", "hello")
    report = run(app)
    assert (report.conversations, report.failures, report.replies_queued) == (2, 1, 1)
    assert all("Services" not in path for _, path in fake_api.calls)


def test_missed_messages_are_answered_in_reply_to_the_newest(make_app, sender, fake_api):
    """Without a wait, the newest question gets the answer (the older ones fall under the
    cooldown); with AUTO_REPLY_DEBOUNCE, the burst is read in the order it was written and
    answered in reply to its newest message (it was read newest first, the reply went to
    "hi" and the newest message stayed DEFERRED for good)."""
    from app.compose import pending

    for debounce in ("0", "60"):
        app = make_app(AUTO_REPLY_DEBOUNCE=debounce)
        conversation = fake_api.add_conversation()
        sids = [fake_api.add_message(conversation, "+15550001111", body)["sid"]
                for body in ("hi", "my card has not arrived", "ordered two weeks ago")]
        run(app)
        if debounce != "0":
            with services(app).db.session() as s:
                [burst] = s.scalars(select(pending.COMPOSITIONS.c.body)).all()
            assert burst.splitlines() == ["hi", "my card has not arrived",
                                          "ordered two weeks ago"]
            assert services(app).composer.run_until_idle(ahead=61) == 1
        with services(app).db.session() as s:
            [reply] = s.scalars(select(Reply).where(
                Reply.conversation_sid == conversation)).all()
        assert reply.in_reply_to == sids[-1], debounce
