"""Sender: retries what may pass later, gives up on what cannot, survives restarts."""

import itertools
import logging
import threading
from datetime import timedelta

import pytest
from sqlalchemy import update

from app import start_background_work
from app.delivery import outbox
from app.services import services
from app.store.models import Reply, utcnow
from app.twilio import marker
from tests.support.outbox import statuses, the_reply
from tests.support.sending import run_until_idle, send, take
from tests.support.waiting import wait_for
from tests.support.webhooks import post_event


@pytest.mark.parametrize("status", [500, 502, 503])
def test_transient_errors_are_retried_until_sent(app, client, sender, fake_api, status):
    """5xx are retried; the reply is sent once, on the third attempt."""
    fake_api.fail(2, status=status)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sent", 3)
    assert len(fake_api.created) == 1


def test_throttled_calls_are_retried_without_counting_an_attempt(app, client, sender,
                                                                  fake_api):
    """429: Twilio did nothing. The reply is queued again, the attempt is not counted
    (so no look at Twilio before sending), and the reply is sent once."""
    fake_api.fail(2, status=429)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sent", 1)
    assert len(fake_api.created) == 1
    assert [m for m, p in fake_api.requests if m == "GET"] == []  # no lookups


def test_timeouts_are_retried(make_app, fake_api):
    """A call slower than TWILIO_HTTP_TIMEOUT is abandoned and retried."""
    app = make_app(TWILIO_HTTP_TIMEOUT="0.3", SEND_SETTLE_SECONDS="2")
    post_event(app.test_client(), fake_api.message_added())
    fake_api.latency = 1.0
    fake_api.fail(1, status=503)  # the slow answer is an error: nothing was created
    sender = services(app).sender
    [item] = take(sender, 1)
    send(sender, item)
    reply = the_reply(app)
    assert reply.status == "queued" and "timed out" in reply.error_message
    fake_api.latency = 0
    run_until_idle(sender)
    assert the_reply(app).status == "sent"
    assert len(fake_api.created) == 1


def test_timeout_after_twilio_accepted_does_not_send_twice(make_app, fake_api):
    """The answer was lost but Twilio created the reply: the retry finds it instead of resending."""
    app = make_app(TWILIO_HTTP_TIMEOUT="0.3")
    post_event(app.test_client(), fake_api.message_added())
    fake_api.latency = 0.6
    sender = services(app).sender
    [item] = take(sender, 1)
    send(sender, item)
    assert the_reply(app).status == "queued"
    wait_for(lambda: fake_api.created)  # Twilio finished creating it after we gave up
    fake_api.latency = 0
    run_until_idle(sender)
    reply = the_reply(app)
    assert reply.status == "sent" and reply.twilio_message_sid == fake_api.created[0].sid
    assert len(fake_api.created) == 1


def test_connection_errors_are_retried(app, client, sender, fake_api):
    """With the API unreachable the reply waits; once it is back, the reply goes out."""
    post_event(client, fake_api.message_added())
    fake_api.stop()
    [item] = take(sender, 1)
    send(sender, item)
    assert the_reply(app).status == "queued"
    fake_api.start()
    run_until_idle(sender)
    assert the_reply(app).status == "sent"


@pytest.mark.parametrize("status, code", [(400, 21610), (403, 20003), (404, 20404)])
def test_permanent_errors_fail_without_retry(app, client, sender, fake_api, caplog, status, code):
    """Other 4xx are final: marked failed with Twilio's code, logged at ERROR, not retried."""
    caplog.set_level(logging.ERROR, logger="app.delivery.attempt")
    fake_api.fail(1, status=status, code=code)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts, reply.error_code) == ("failed", 1, code)
    [record] = [r for r in caplog.records if r.name == "app.delivery.attempt"]
    assert f"code={code}" in record.getMessage() and "permanent" in record.getMessage()
    assert fake_api.created == []


def test_gives_up_after_max_attempts(app, client, sender, fake_api, caplog):
    """A transient error that never passes fails after SEND_MAX_ATTEMPTS (4 here)."""
    caplog.set_level(logging.ERROR, logger="app.delivery.attempt")
    fake_api.fail(10, status=503)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("failed", 4)
    assert "gave up after retries" in caplog.text


def test_backoff_is_exponential_with_jitter_and_capped():
    """Delays stay within [0, min(cap, base * 2**attempt)) and spread out."""
    for attempt in range(1, 12):
        delays = [outbox.backoff(attempt, 1.0, 60.0) for _ in range(200)]
        assert all(0 <= d <= min(60.0, 2 ** attempt) for d in delays)
        assert len({round(d, 6) for d in delays}) > 100
    assert max(outbox.backoff(30, 1.0, 60.0) for _ in range(200)) <= 60.0


def test_retry_waits_for_its_backoff(make_app, fake_api):
    """A retried reply is not due again until its backoff has passed."""
    app = make_app(SEND_BACKOFF_SECONDS="60", SEND_BACKOFF_MAX_SECONDS="60")
    fake_api.fail(1, status=503)
    post_event(app.test_client(), fake_api.message_added())
    sender = services(app).sender
    assert run_until_idle(sender) == 1
    reply = the_reply(app)
    assert reply.status == "queued" and reply.next_attempt_at > utcnow()
    assert run_until_idle(sender) == 0


def test_replies_recorded_before_a_restart_are_sent_after_it(make_app, fake_api):
    """A reply queued by a process that died before sending is sent by the next one."""
    first = make_app()
    post_event(first.test_client(), fake_api.message_added())
    services(first).db.dispose()  # the process is gone; nothing was sent
    assert fake_api.created == []

    second = make_app(SENDER_IN_PROCESS="true")
    start_background_work(second)  # as gunicorn does after forking a worker
    try:
        wait_for(lambda: len(fake_api.created) == 1)
        wait_for(lambda: the_reply(second).status == "sent")
    finally:
        services(second).supervisor.stop()


def test_taken_over_reply_is_not_sent_twice(app, client, sender, fake_api):
    """A sender died after Twilio accepted the reply: its successor finds it and does not resend."""
    post_event(client, fake_api.message_added())
    [item] = take(sender, 1)
    sender.client.send_message(item.conversation_sid, author=item.author, body=item.body,
                               attributes=item.attributes)  # ... and the process died here
    with services(app).db.session() as s:  # its lease runs out
        s.execute(update(Reply).values(next_attempt_at=utcnow()))
    assert run_until_idle(sender) == 1
    reply = the_reply(app)
    assert reply.status == "sent" and reply.attempts == 2
    assert len(fake_api.created) == 1 and reply.twilio_message_sid == fake_api.created[0].sid


def test_in_process_sender_replies_without_waiting_for_a_poll(make_app, fake_api):
    """The background sender is woken by the commit, not by its poll interval."""
    app = make_app(SENDER_IN_PROCESS="true", SENDER_POLL_SECONDS="30")
    try:
        services(app).supervisor.start()
        post_event(app.test_client(), fake_api.message_added())
        wait_for(lambda: fake_api.created, timeout=5)
    finally:
        services(app).supervisor.stop()


def test_a_created_answer_that_is_not_json_is_found_not_failed(app, client, sender, fake_api):
    """A 201 whose body is not JSON: Twilio took the request, so its outcome is unknown;
    the look-up before any resend finds the message: sent once, recorded with its SID,
    never reported failed while the customer has it."""
    fake_api.garble(1)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sent", 2)
    assert len(fake_api.created) == 1 and reply.twilio_message_sid == fake_api.created[0].sid


def test_connection_cut_mid_answer_is_retried(app, client, sender, fake_api):
    """A connection dropped halfway through the answer is transient; the retry finds the reply."""
    fake_api.cut(1)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sent", 2)
    assert len(fake_api.created) == 1 and reply.twilio_message_sid == fake_api.created[0].sid


def test_lookup_errors_are_retried(app, client, sender, fake_api):
    """A 503 on the already-sent lookup (a listing, raised without a status) is retried,
    and is not an attempt: nothing was sent (test_settle.py has six in a row)."""
    fake_api.fail(1, status=503, accepted=True)
    fake_api.fail_reads(1, status=503)
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.attempts) == ("sent", 2)
    assert len(fake_api.created) == 1 and reply.twilio_message_sid == fake_api.created[0].sid


# -- rich replies ---------------------------------------------------------------------

TEMPLATE = "HX" + "c" * 32


def test_template_reply_is_sent_as_content(app, sender, fake_api, queue):
    """A reply queued as a Content template goes out as ContentSid + ContentVariables."""
    queue("CH" + "a" * 32, body=None, content_sid=TEMPLATE, content_variables='{"1": "Ada"}')
    assert run_until_idle(sender) == 1
    [created] = fake_api.created
    assert (created.content_sid, created.content_variables) == (TEMPLATE, {"1": "Ada"})
    assert "Body" not in created.form
    assert the_reply(app).status == "sent"


# -- WhatsApp's 24-hour window --------------------------------------------------------

@pytest.mark.parametrize("channel, content_sid, hours_ago, sent", [
    ("WHATSAPP", None, 25, False),
    ("WHATSAPP", None, 23, True),
    ("WHATSAPP", TEMPLATE, 25, True),  # an approved template may go out any time
    ("SMS", None, 25, True),
    ("WHATSAPP", None, None, True),  # no time to judge by: Twilio decides
], ids=["whatsapp-text-late", "whatsapp-text-in-time", "whatsapp-template-late", "sms-late",
        "whatsapp-unknown-time"])
def test_whatsapp_free_text_is_not_sent_after_24_hours(
        app, sender, fake_api, queue, channel, content_sid, hours_ago, sent):
    """WhatsApp text more than 24 h after the customer wrote fails at once with 63016."""
    written = None if hours_ago is None else utcnow() - timedelta(hours=hours_ago)
    queue("CH" + "a" * 32, channel=channel, content_sid=content_sid, message_at=written)
    assert run_until_idle(sender) == 1
    reply = the_reply(app)
    if sent:
        assert reply.status == "sent" and len(fake_api.created) == 1
        return
    assert (reply.status, reply.attempts, reply.error_code) == ("failed", 1, 63016)
    assert reply.error_message.startswith(
        "outside WhatsApp's 24-hour window: free text not sent")
    assert fake_api.requests == []  # Twilio was not asked


def test_late_reply_twilio_has_already_is_recorded_sent(app, sender, fake_api, queue):
    """A retry past the window first looks for the reply: one Twilio has is sent, not failed."""
    conversation = fake_api.add_conversation()
    asked = queue(conversation, channel="WHATSAPP",
                  message_at=utcnow() - timedelta(hours=25))
    message = fake_api.add_message(conversation, "support-bot", "Thanks!",
                                   attributes=marker.reply_attributes(asked))
    with services(app).db.session() as s:  # an earlier attempt reached Twilio, unanswered
        s.execute(update(Reply).values(attempts=1))
    run_until_idle(sender)
    reply = the_reply(app)
    assert (reply.status, reply.twilio_message_sid) == ("sent", message["sid"])
    assert fake_api.created == []


# -- order within a conversation ------------------------------------------------------

def test_replies_of_one_conversation_go_out_one_at_a_time_in_order(make_app, fake_api, queue):
    """Three replies in one conversation, a slow API, 8 send slots: strictly one after another."""
    app = make_app(SENDER_IN_PROCESS="true", SENDER_CONCURRENCY="8")
    conversation = fake_api.add_conversation()
    asked = [queue(conversation, into=app) for _ in range(3)]
    fake_api.latency = 0.2
    services(app).supervisor.start()
    try:
        wait_for(lambda: len(fake_api.created) == 3)
    finally:
        services(app).supervisor.stop()
    created = fake_api.created
    assert [c.in_reply_to for c in created] == asked
    for before, after in itertools.pairwise(created):
        assert after.received_at >= before.at, "a reply was sent before the previous answered"


def test_replies_of_different_conversations_go_out_together(make_app, fake_api, queue):
    """Three conversations, 8 send slots: all three creations are in flight at once."""
    app = make_app(SENDER_IN_PROCESS="true", SENDER_CONCURRENCY="8", TWILIO_HTTP_TIMEOUT="20",
                   SEND_SETTLE_SECONDS="30")
    for _ in range(3):
        queue(fake_api.add_conversation(), into=app)
    together = threading.Barrier(3, timeout=10)  # breaks unless all three meet
    fake_api.on_create = lambda created: together.wait()
    services(app).supervisor.start()
    try:
        wait_for(lambda: statuses(app) == ["sent"] * 3, timeout=15)
    finally:
        services(app).supervisor.stop()
    assert not together.broken


# -- media ----------------------------------------------------------------------------

def test_a_reply_with_media_is_sent_with_its_media_sid_uploaded_once(app, sender, fake_api,
                                                                      queue, tmp_path):
    """The rules' media file goes to Twilio's Media Content Service once; every reply
    carries its MediaSid (the message API takes no URL), text optional."""
    picture = tmp_path / "hours.png"
    picture.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 200)
    for body in ("We're open 9-5.", None):
        queue(fake_api.add_conversation(), body=body, media=str(picture))
    assert run_until_idle(sender) == 2
    media_sids = {c.form.get("MediaSid") for c in fake_api.created}
    assert len(media_sids) == 1 and next(iter(media_sids)).startswith("ME")
    assert [c.body for c in fake_api.created] == ["We're open 9-5.", None]
    uploads = [p for m, p in fake_api.requests if m == "POST" and p.endswith("/Media")]
    assert len(uploads) == 1


def test_a_sender_starting_while_the_database_is_away_waits_for_its_first_beat(
        make_app, fake_api, monkeypatch, caplog):
    """The registry cannot be reached when the loop starts: the loop stays up, sends
    nothing without a share, and sends once a beat succeeds."""
    from sqlalchemy.exc import OperationalError

    from app.delivery import registry

    real_beat, failures = registry.beat, [3]

    def beat(*args, **kwargs):
        if failures[0]:
            failures[0] -= 1
            raise OperationalError("SELECT 1", {}, Exception("server closed the connection"))
        return real_beat(*args, **kwargs)

    monkeypatch.setattr(registry, "beat", beat)
    app = make_app(SENDER_IN_PROCESS="true")
    post_event(app.test_client(), fake_api.message_added())
    with caplog.at_level(logging.WARNING):
        services(app).supervisor.start()
        try:
            wait_for(lambda: statuses(app) == ["sent"], timeout=15)
        finally:
            services(app).supervisor.stop()
    assert not [r for r in caplog.records if "loop died" in r.getMessage()]
    assert any("heartbeat failed" in r.getMessage() for r in caplog.records)


# -- what Twilio holds cannot stop a send (issue 17, point 3) --------------------------

def test_deeply_nested_attributes_do_not_stop_a_retry(app, sender, fake_api, queue):
    """A retry looks through the conversation's messages for its reply; a chat user's own
    message with attributes nested 5,000 deep is just not ours (was RecursionError)."""
    conversation = fake_api.add_conversation()
    fake_api.add_message(conversation, "someone", "hi", attributes="[" * 5000 + "]" * 5000)
    queue(conversation)
    with services(app).db.session() as s:  # an earlier attempt may have reached Twilio
        s.execute(update(Reply).values(attempts=1))
    run_until_idle(sender)
    assert the_reply(app).status == "sent"
    assert len(fake_api.created) == 1


# -- what the outbox holds cannot steer a call (issue 17, point 5) ----------------------

def test_a_stored_conversation_sid_of_the_wrong_shape_fails_without_a_call(app, sender,
                                                                          fake_api, queue):
    """A row from before SIDs were checked: failed at once, permanently, Twilio not asked."""
    queue("CH" + "a" * 32 + "/../../Services/IS" + "b" * 8)
    run_until_idle(sender)
    reply = the_reply(app)
    assert reply.status == "failed" and reply.attempts == 1
    assert "is not CH + 32 hex digits" in reply.error_message
    assert fake_api.calls == []


def test_a_busy_sender_leases_in_batches_not_one_reply_at_a_time(make_app, fake_api, queue,
                                                                monkeypatch):
    """Under load every reply sent frees a slot; the sender refills its lead in batches,
    so the database sees a few leases per window, not one per reply sent."""
    app = make_app(SENDER_IN_PROCESS="true", SENDER_CONCURRENCY="40", TWILIO_HTTP_TIMEOUT="20",
                   SEND_SETTLE_SECONDS="30")
    asked = {queue(fake_api.add_conversation(), into=app) for _ in range(240)}
    fake_api.latency = 0.1
    leases = []
    real = outbox.lease_due
    monkeypatch.setattr(outbox, "lease_due",
                        lambda *a, **k: leases.append(real(*a, **k)) or leases[-1])
    services(app).supervisor.start()
    try:
        wait_for(lambda: len(fake_api.created) >= 240, timeout=30)
    finally:
        services(app).supervisor.stop()
    assert sorted(c.in_reply_to for c in fake_api.created) == sorted(asked)
    leased = [len(batch) for batch in leases if batch]
    assert sum(leased) == 240
    assert len(leased) <= 240 / 4, f"{len(leased)} leases for 240 replies: {leased}"
