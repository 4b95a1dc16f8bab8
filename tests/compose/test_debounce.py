"""AUTO_REPLY_DEBOUNCE: a burst of messages gets one answer, once the conversation is
quiet, exactly once whatever the composers, their crashes and late messages."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest
from sqlalchemy import delete, select, text, update

from app.compose import pending
from app.services import services
from app.store.models import Composition, Conversation, ProcessedEvent, Reply, utcnow
from tests.support.decisions import CARD_LOST_OR_STOLEN
from tests.support.sending import run_until_idle
from tests.support.waiting import wait_for
from tests.support.webhooks import message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


RULES = """
[greeting]
text = "Welcome!"

[fallback]
text = "Thanks, we'll be in touch."

[[rules]]
name = "card"
pattern = 'card(.|\\n)*(arrive|come)'
text = "Cards arrive within 7 working days."
"""
BURST = ["hi", "my card", "it hasn't arrived, ordered 2 weeks ago"]


@pytest.fixture
def rules_file(tmp_path):
    path = tmp_path / "rules.toml"
    path.write_text(RULES)
    return path


@pytest.fixture
def debounced(make_app, rules_file):
    return make_app(AUTO_REPLY_DEBOUNCE="60", RESPONDER_RULES=rules_file,
                    AUTO_REPLY_COOLDOWN="0")


def send_burst(app, bodies=BURST, conversation_sid="CH" + "ab" * 16):
    client = app.test_client()
    sids = []
    for body in bodies:
        params = message_added(body=body, conversation_sid=conversation_sid)
        response = post_event(client, params)
        assert response.status_code == 200
        assert response.headers["X-Webhook-Outcome"] == (
            "answer deferred: after 60 s without a new message")
        sids.append(params["MessageSid"])
    return sids


def replies(app):
    with services(app).db.session() as s:
        return s.scalars(select(Reply).order_by(Reply.id)).all()


def stored_outcome(app, message_sid):
    with services(app).db.session() as s:
        return s.scalars(select(ProcessedEvent.outcome).where(
            ProcessedEvent.message_sid == message_sid)).one()


def test_a_burst_is_answered_once_as_one_text_after_the_quiet(debounced, fake_api):
    """Three messages: nothing before the quiet period ends, then one reply to the last
    message, chosen on the three texts together (the rule needs words from two of them)."""
    composer = services(debounced).composer
    sids = send_burst(debounced)
    assert replies(debounced) == []
    assert composer.run_until_idle() == 0  # not quiet for 60 s yet
    assert composer.run_until_idle(ahead=61) == 1
    [reply] = replies(debounced)
    assert reply.in_reply_to == sids[-1]
    assert reply.body == "Cards arrive within 7 working days."
    assert stored_outcome(debounced, sids[-1]) == "reply queued: rule 'card'"
    assert stored_outcome(debounced, sids[0]).startswith("answer deferred")
    assert composer.run_until_idle(ahead=61) == 0  # composed once
    assert run_until_idle(services(debounced).sender) == 1
    assert [c.form["Body"] for c in fake_api.created] == [reply.body]


def test_a_new_burst_after_the_answer_starts_from_its_own_text(debounced):
    """The messages since the bot's last reply make the next burst, not the old ones."""
    composer = services(debounced).composer
    send_burst(debounced)
    composer.run_until_idle(ahead=61)
    [last] = send_burst(debounced, ["thanks!"])
    composer.run_until_idle(ahead=61)
    assert [r.body for r in replies(debounced)][-1] == "Thanks, we'll be in touch."
    assert replies(debounced)[-1].in_reply_to == last


def test_the_first_burst_gets_the_greeting(make_app, rules_file):
    """A greeting is for the conversation's first burst, however many messages it has."""
    app = make_app(AUTO_REPLY_DEBOUNCE="60", RESPONDER_RULES=rules_file)
    send_burst(app, ["hello", "anyone there?"])
    services(app).composer.run_until_idle(ahead=61)
    assert [r.body for r in replies(app)] == ["Welcome!"]


def test_a_message_arriving_while_composing_drops_that_composition(debounced):
    """Not quiet after all: the composition in flight is dropped, and the whole burst is
    answered once when quiet again, in reply to the latest message."""
    composer = services(debounced).composer
    send_burst(debounced, BURST[:2])
    with services(debounced).db.transaction() as conn:
        [held] = pending.lease_due(conn, 10, 30, ahead=61)
    [late] = send_burst(debounced, BURST[2:])
    assert composer.compose(held) is None
    assert replies(debounced) == []
    assert composer.run_until_idle(ahead=61) == 1
    [reply] = replies(debounced)
    assert reply.in_reply_to == late and reply.body.startswith("Cards arrive")


def test_a_message_arriving_as_a_burst_is_settled_waits_for_it_not_deadlocks(
        debounced, database_url):
    """PostgreSQL: the composer locked the burst, then the conversation; a webhook locks
    the conversation, then the burst. Caught between the two, they deadlocked: the
    webhook answered 503 and Twilio never sent its message again (an adversarial pass:
    14 conversations, a message every second, debounce 1 s: 1-3 per run). The composer
    now takes the conversation's lock first, as the webhook does."""
    if database_url.startswith("sqlite"):
        pytest.skip("SQLite has one writer at a time: no lock order to get wrong")
    sid = "CH" + "ab" * 16
    composer, db = services(debounced).composer, services(debounced).db
    send_burst(debounced, BURST[:2], conversation_sid=sid)
    with db.transaction() as conn:
        [held] = pending.lease_due(conn, 10, 30, ahead=61)
    composed = {}

    def compose():
        try:
            composed["decision"] = composer.compose(held)
        except Exception as exc:  # noqa: BLE001 - the test reports it
            composed["error"] = exc

    waiting = text("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' "
                   "AND datname = current_database()")
    with db.engine.connect() as webhook, webhook.begin():
        # A webhook's transaction, holding the conversation's row as it decides.
        webhook.execute(update(Conversation).where(Conversation.sid == sid)
                        .values(updated_at=utcnow()))
        thread = threading.Thread(target=compose)
        thread.start()

        def blocked() -> bool:  # a new transaction each time: its statistics are fresh
            with db.engine.connect() as probe:
                return probe.execute(waiting).scalar() >= 1 or bool(composed)

        wait_for(blocked, timeout=10)
        assert not composed, composed  # the composer waits for the conversation's lock
        # ... and then adding its message to the burst, as pending.defer does.
        pending.defer(webhook, conversation_sid=sid, message_sid="IM" + "cd" * 16,
                      body=BURST[2], author="+15558675310", participant_sid=None,
                      channel="SMS", received_at=utcnow(), request_id=None,
                      delay_seconds=60)
    thread.join(timeout=30)
    assert composed == {"decision": None}  # not quiet after all: composed again later


def test_a_lease_of_one_takes_one_burst_whatever_the_planner_knows(debounced, database_url):
    """PostgreSQL, the compositions table analysed while it held a row: LIMIT 1 leased
    every due burst (the planner reran the subquery per row), and the composer's
    free-slot count went negative."""
    if database_url.startswith("sqlite"):
        pytest.skip("PostgreSQL's planner")
    db = services(debounced).db
    send_burst(debounced, BURST[:1], conversation_sid="CH" + "01" * 16)
    with db.transaction() as conn:
        conn.exec_driver_sql("ANALYZE compositions")
        conn.execute(delete(Composition))
    for n in range(3):
        send_burst(debounced, BURST[:1], conversation_sid="CH" + f"{n + 2:02d}" * 16)
    with db.transaction() as conn:
        assert len(pending.lease_due(conn, 1, 30, ahead=61)) == 1


def test_a_composer_that_dies_is_taken_over_once_its_lease_ends(debounced, make_app,
                                                                 rules_file):
    """A composition leased by a process that died (no settle) waits for its lease, then
    another instance composes it: one reply."""
    send_burst(debounced)
    with services(debounced).db.transaction() as conn:
        [held] = pending.lease_due(conn, 10, 30, ahead=61)  # and then the process dies
    other = make_app(AUTO_REPLY_DEBOUNCE="60", RESPONDER_RULES=rules_file)
    assert services(other).composer.run_until_idle(ahead=61) == 0  # the lease holds
    with services(other).db.transaction() as conn:  # 30 s later
        conn.execute(update(Composition).values(lease_until=utcnow() - timedelta(seconds=1)))
    assert services(other).composer.run_until_idle(ahead=61) == 1
    assert len(replies(other)) == 1
    # The dead process's composition, had it finished after all, records nothing.
    assert services(debounced).composer.compose(held) is None
    assert len(replies(other)) == 1


def test_composers_of_several_instances_answer_a_burst_once(debounced, make_app, rules_file):
    """Four instances compose at the same moment: one decision, one reply."""
    apps = [debounced] + [make_app(AUTO_REPLY_DEBOUNCE="60", RESPONDER_RULES=rules_file)
                          for _ in range(3)]
    for n in range(5):
        send_burst(debounced, BURST, conversation_sid=f"CH{n:032x}")
    start = threading.Barrier(len(apps))
    done = []

    def compose(app):
        start.wait()
        done.append(services(app).composer.run_until_idle(ahead=61))

    threads = [threading.Thread(target=compose, args=(app,)) for app in apps]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert sum(done) == 5
    assert len(replies(debounced)) == 5
    assert len({r.in_reply_to for r in replies(debounced)}) == 5


def test_the_supervised_composer_answers_once_the_conversation_is_quiet(make_app, rules_file,
                                                                        fake_api):
    """In a serving process: the composer loop composes the burst after the quiet period
    and the sender sends it, with nobody calling them."""
    app = make_app(AUTO_REPLY_DEBOUNCE="1", RESPONDER_RULES=rules_file,
                   SENDER_POLL_SECONDS="0.1", SENDER_IN_PROCESS="true")
    client = app.test_client()
    for body in BURST:
        post_event(client, message_added(body=body, conversation_sid="CH" + "cd" * 16))
    supervisor = services(app).supervisor
    supervisor.start()
    try:
        wait_for(lambda: fake_api.created, timeout=15)
    finally:
        supervisor.stop()
    assert [c.form["Body"] for c in fake_api.created] == ["Cards arrive within 7 working days."]


def test_silence_rules_still_apply_at_composition(debounced):
    """An agent who writes during the quiet period takes over: the burst gets no reply."""
    sids = send_burst(debounced)
    post_event(debounced.test_client(), message_added(
        author="alice@support", body="I'm on it", conversation_sid="CH" + "ab" * 16))
    services(debounced).composer.run_until_idle(ahead=61)
    assert replies(debounced) == []
    assert stored_outcome(debounced, sids[-1]).startswith(
        "ignored: an agent is handling the conversation")


@pytest.mark.parametrize("keyword", ["STOP", "stop!", "Unsubscribe"])
def test_stop_during_the_quiet_period_ends_the_burst_unanswered(debounced, fake_api, keyword):
    """A customer who writes STOP while earlier messages wait gets nothing after it: the
    burst is dropped, also from a composer already holding it."""
    conversation = "CH" + "ab" * 16
    client = debounced.test_client()
    send_burst(debounced, BURST[:2])
    with services(debounced).db.transaction() as conn:
        [held] = pending.lease_due(conn, 10, 30, ahead=61)
    response = post_event(client, message_added(body=keyword, conversation_sid=conversation))
    assert response.headers["X-Webhook-Outcome"].startswith("ignored: compliance keyword")
    composer = services(debounced).composer
    assert composer.compose(held) is None
    assert composer.run_until_idle(ahead=600) == 0
    assert replies(debounced) == []
    assert run_until_idle(services(debounced).sender) == 0
    assert fake_api.created == []


def test_help_during_the_quiet_period_leaves_the_question_to_answer(debounced):
    """HELP is answered by Twilio; the customer's question before it still gets its answer."""
    send_burst(debounced, BURST)
    post_event(debounced.test_client(), message_added(body="HELP",
                                                      conversation_sid="CH" + "ab" * 16))
    assert services(debounced).composer.run_until_idle(ahead=61) == 1
    assert [r.body for r in replies(debounced)] == ["Cards arrive within 7 working days."]


def test_the_newest_messages_of_a_long_burst_decide(debounced):
    """A long first message (a pasted order confirmation) must not push the question
    after it out of what the rules read: the burst is decided on its newest lines."""
    pasted = "Order confirmation. " + "Item: blue widget, qty 1, price 9.99. " * 150
    assert len(pasted) > 4096  # past what a rule reads of one text
    send_burst(debounced, [pasted, "my card", "it hasn't arrived"])
    services(debounced).composer.run_until_idle(ahead=61)
    assert [r.body for r in replies(debounced)] == ["Cards arrive within 7 working days."]


def test_a_burst_that_keeps_growing_keeps_its_newest_text(debounced):
    """The stored burst is bounded: past MAX_BODY it starts again from its newest message."""
    chunk = "z" * 9000
    send_burst(debounced, [chunk, chunk, chunk, "my card", "it hasn't arrived"])
    with services(debounced).db.session() as s:
        [body] = s.scalars(select(Composition.body)).all()
    assert len(body) <= pending.MAX_BODY + 9001
    assert body.endswith("my card\nit hasn't arrived")
    services(debounced).composer.run_until_idle(ahead=61)
    assert [r.body for r in replies(debounced)] == ["Cards arrive within 7 working days."]


def test_a_pick_followed_by_thanks_in_one_burst_gets_its_answer(make_app, tmp_path):
    """"Did you mean: 1) ... 2) ...?", then a burst of "2" and "thanks!": the second
    entry's answer (the burst's last message was only a thanks; waiting for the burst
    kept the offer)."""
    path = tmp_path / "faq.toml"
    path.write_text(RULES + CARD_LOST_OR_STOLEN)
    app = make_app(AUTO_REPLY_DEBOUNCE="60", RESPONDER_RULES=path, AUTO_REPLY_COOLDOWN="0")
    composer = services(app).composer
    send_burst(app, ["i lost my card or it was stolen"])
    composer.run_until_idle(ahead=61)
    [question] = replies(app)
    assert question.body.startswith("Did you mean: 1) ")
    second = "Block it in the app and report the theft to the police." \
        if "2) My card was stolen" in question.body else "Block it in the app right away."
    send_burst(app, ["2", "thanks!"])
    composer.run_until_idle(ahead=61)
    assert replies(app)[-1].body == second
