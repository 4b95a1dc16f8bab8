"""Processor: handlers decide in their request's own thread (and may read state), the
batched unit only claims and writes, and what is logged was committed, once."""

import logging
import threading

from sqlalchemy import select

from app.pipeline.events import Event
from app.pipeline.outcome import Kind, Outcome
from app.pipeline.router import Router
from app.services import services
from app.store.models import ProcessedEvent
from tests.support.waiting import wait_for
from tests.support.webhooks import delivery_updated, message_added, post_event


def hold_the_lead(app):
    """Make a thread lead a group-commit batch until released; return (release, thread)."""
    release, leading = threading.Event(), threading.Event()

    def unit(conn):
        leading.set()
        release.wait(10)

    thread = threading.Thread(target=services(app).db.group_commit.run, args=(unit,))
    thread.start()
    assert leading.wait(5)
    return release, thread


def queued(app, n):
    commit = services(app).db.group_commit
    wait_for(lambda: commit.waiting >= n)


def test_handlers_decide_in_their_own_thread_even_when_another_leads(app):
    """Two events queued behind a busy leader are written in one batch by one thread,
    but each was decided by the thread of its own request."""
    deciders = {}
    router = Router()

    @router.register("onParticipantAdded")
    def note(event, ctx):
        deciders[event.get("Identity")] = threading.get_ident()
        return Outcome(Kind.IGNORED, "noted")

    processor = services(app).processor
    processor.router.add(router)
    release, leader = hold_the_lead(app)
    callers = {}

    def request(identity):
        callers[identity] = threading.get_ident()
        processor.process(Event.from_params({"EventType": "onParticipantAdded",
                                             "Identity": identity}, token=identity))

    threads = [threading.Thread(target=request, args=(name,)) for name in ("ann", "bob")]
    for t in threads:
        t.start()
    queued(app, 2)  # both requests' units wait behind the leader's
    release.set()
    for t in (*threads, leader):
        t.join(10)
    assert deciders == callers


def test_a_redone_batch_logs_each_receipt_once(app, client, caplog):
    """A batch that fails is redone one unit at a time; the receipts in it are stored
    and logged once each, after their commit (the failing unit logs nothing)."""
    caplog.set_level(logging.INFO, logger="app.handlers.receipts")
    release, leader = hold_the_lead(app)
    receipts = [delivery_updated(status="delivered") for _ in range(2)]
    posts = [threading.Thread(target=post_event, args=(app.test_client(), params))
             for params in receipts]

    def failing(conn):
        raise ValueError("this unit fails")

    errors = []
    bad = threading.Thread(target=lambda: errors.append(
        _raises(lambda: services(app).db.group_commit.run(failing))))
    for t in posts:
        t.start()
    queued(app, 2)
    bad.start()
    queued(app, 3)
    release.set()
    for t in (*posts, bad, leader):
        t.join(10)
    lines = [r.getMessage() for r in caplog.records if r.name == "app.handlers.receipts"]
    for params in receipts:
        assert sum(params["MessageSid"] in line for line in lines) == 1
    assert errors == [ValueError]


def _raises(call):
    try:
        call()
    except Exception as exc:  # noqa: BLE001
        return type(exc)
    return None


def test_handlers_may_read_conversation_state(app, client):
    """A handler sees what the bot did in the conversation, read outside the writer lock."""
    seen = []
    router = Router()

    @router.register("onConversationUpdated", requires=("ConversationSid",))
    def look(event, ctx):
        seen.append(ctx.state.conversation(event.require("ConversationSid")))
        return Outcome(Kind.IGNORED, "looked")

    services(app).processor.router.add(router)
    params = message_added()
    post_event(client, params)  # a reply is queued in this conversation
    post_event(client, {"EventType": "onConversationUpdated",
                        "ConversationSid": params["ConversationSid"]})
    [state] = seen
    assert state.state.replies_last_hour == 1 and state.state.last_reply_at is not None


def test_reading_state_does_not_wait_for_a_writer(app):
    """While a write transaction is open, a handler's read still answers at once."""
    db = services(app).db
    writing, done = threading.Event(), threading.Event()

    def writer():
        with db.transaction() as conn:
            conn.exec_driver_sql("SELECT 1")
            writing.set()
            done.wait(10)

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        assert writing.wait(5)
        result = []
        reader = threading.Thread(target=lambda: result.append(
            services(app).processor.state.conversation("CH" + "0" * 32)))
        reader.start()
        reader.join(3)
        assert result and result[0].state.replies_last_hour == 0
    finally:
        done.set()
        thread.join(10)


def test_the_outcome_kind_is_stored_with_the_claim(app, client):
    """Catch-up, the CLI and metrics count outcomes by kind, not by their wording."""
    post_event(client, message_added())
    post_event(client, message_added(author="alice@support"))
    post_event(client, delivery_updated(status="read"))
    with services(app).db.session() as s:
        kinds = sorted(s.scalars(select(ProcessedEvent.outcome_kind)).all())
    assert kinds == ["IGNORED", "RECEIPT", "REPLY_QUEUED"]


def test_an_event_without_any_key_is_still_handled_once(app, client):
    """A handled event with no idempotency token gets a key derived from its fields: a
    second delivery (RetryCount differs) runs no write again."""
    writes = []
    router = Router()

    @router.register("onParticipantAdded")
    def note(event, ctx):
        ctx.on_claim(lambda conn: writes.append(event))
        return Outcome(Kind.IGNORED, "noted")

    services(app).processor.router.add(router)
    params = {"EventType": "onParticipantAdded", "ParticipantSid": "MB" + "1" * 32,
              "ConversationSid": "CH" + "2" * 32, "RetryCount": "0"}
    no_token = {"I-Twilio-Idempotency-Token": ""}
    first = post_event(client, params, headers=no_token)
    second = post_event(client, {**params, "RetryCount": "1"}, headers=no_token)
    other = post_event(client, {**params, "ParticipantSid": "MB" + "3" * 32}, headers=no_token)
    assert [r.headers["X-Webhook-Outcome"] for r in (first, second, other)] == [
        "ignored: noted", "duplicate", "ignored: noted"]
    assert len(writes) == 2
