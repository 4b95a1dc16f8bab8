"""The read model behind the dashboard and the API: conversations by their latest
message with one state each, filters, a search, pagination without repeats, bounded
scans, and one meaning per reply outcome in Python and in SQL."""

import json

import pytest
from sqlalchemy import insert, select

from app.services import services
from app.store.models import Reply
from app.timeline import conversations, overview, status
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


def conversation(n: int) -> str:
    return f"CH{n:032d}"


def customer(n: int) -> str:
    return f"+1555000{n:04d}"


@pytest.fixture
def bot(make_app):
    return make_app(AGENT_IDENTITIES="alice@support")


def say(bot, n, body="Hello", *, author=None, extra=None):
    post_event(bot.test_client(), message_added(
        conversation_sid=conversation(n), author=author or customer(n), body=body,
        extra=extra))


def send(bot):
    run_until_idle(services(bot).sender)


def read(bot, fn, *args, **kwargs):
    with services(bot).db.read() as conn:
        return fn(conn, *args, **kwargs)


def states(page) -> dict:
    return {c["conversation_sid"]: c["state"] for c in page["conversations"]}


def test_each_conversation_has_one_state_a_customer_and_first_words(bot, fake_api):
    """The overview answers "is this customer taken care of?" for each conversation."""
    client = bot.test_client()
    say(bot, 1, "Where is my order?")
    send(bot)
    post_event(client, delivery_updated(message_sid=fake_api.created[-1].sid,
                                        conversation_sid=conversation(1), status="read"))
    say(bot, 2, "Any news?", author="whatsapp:" + customer(2))
    send(bot)  # sent, no receipt
    say(bot, 3, "First")
    send(bot)
    say(bot, 3, "Second, within the cooldown")  # silent
    say(bot, 4, "Help")
    send(bot)
    say(bot, 4, "Alice here", author="alice@support")
    say(bot, 5, "STOP")
    fake_api.fail(1, 400, code=30008)
    say(bot, 6, " ".join(["word"] * 40))
    send(bot)
    fake_api.fail(1, 400, code=21610)
    say(bot, 7, "Hi")
    send(bot)
    say(bot, 8, "Undelivered")
    send(bot)
    post_event(client, delivery_updated(message_sid=fake_api.created[-1].sid,
                                        conversation_sid=conversation(8),
                                        status="undelivered", error_code="30003"))

    page = read(bot, overview.page)
    assert states(page) == {
        conversation(1): "answered", conversation(2): "no_receipt",
        conversation(3): "silent", conversation(4): "agent_replied",
        conversation(5): "opted_out", conversation(6): "not_answered",
        conversation(7): "opted_out", conversation(8): "not_answered"}
    assert [c["conversation_sid"] for c in page["conversations"]] == [
        conversation(n) for n in (8, 7, 6, 5, 4, 3, 2, 1)]  # newest activity first
    rows = {c["conversation_sid"]: c for c in page["conversations"]}
    assert rows[conversation(2)]["customer"] == {"address": "whatsapp:" + customer(2),
                                                 "channel": "WHATSAPP"}
    # The agent wrote last: the customer is still the customer.
    assert rows[conversation(4)]["customer"]["address"] == customer(4)
    assert rows[conversation(3)]["reason_text"] == "cooldown after our last reply"
    assert rows[conversation(3)]["messages"] == 2
    assert rows[conversation(6)]["preview"].endswith("…")
    assert len(rows[conversation(6)]["preview"]) == conversations.PREVIEW
    assert rows[conversation(1)]["preview"] == "Where is my order?"


def test_filters_by_state_and_channel(bot, fake_api):
    fake_api.fail(1, 400, code=30008)
    say(bot, 1)
    send(bot)
    say(bot, 2, author="whatsapp:" + customer(2))
    send(bot)
    say(bot, 3)
    send(bot)
    assert list(states(read(bot, overview.page, state="not_answered"))) == [
        conversation(1)]
    assert list(states(read(bot, overview.page, channel="WHATSAPP"))) == [
        conversation(2)]
    assert read(bot, overview.page, state="opted_out")["conversations"] == []


def test_pages_never_show_a_conversation_twice(bot, fake_api):
    """A conversation on page one, with older messages, is not listed again on page two."""
    for n in range(1, 8):
        say(bot, n)
    say(bot, 1, "again")  # conversation 1 is the newest now
    first = read(bot, overview.page, limit=3)
    assert list(states(first)) == [conversation(n) for n in (1, 7, 6)]
    second = read(bot, overview.page, limit=3, before=first["next"])
    third = read(bot, overview.page, limit=3, before=second["next"])
    assert list(states(second)) == [conversation(n) for n in (5, 4, 3)]
    assert list(states(third)) == [conversation(2)] and third["next"] is None


def test_a_rare_filter_reads_a_bounded_number_of_rows(bot, fake_api, monkeypatch):
    """No page reads more than MAX_SCAN messages: a filter that matches rarely gives a
    shorter page and the cursor to look further back from."""
    fake_api.fail(1, 400, code=30008)
    say(bot, 1)
    send(bot)
    for n in range(2, 12):
        say(bot, n)
    monkeypatch.setattr(overview, "SCAN", 2)
    monkeypatch.setattr(overview, "MAX_SCAN", 4)
    page = read(bot, overview.page, state="not_answered")
    assert page["conversations"] == [] and page["scanned_to"] is not None
    found = []
    while page["next"] is not None:
        page = read(bot, overview.page, state="not_answered", before=page["next"])
        found += list(states(page))
    assert found == [conversation(1)]


@pytest.mark.parametrize("typed", [
    "+15550000002", "15550000002", "+1 555 000-0002", "whatsapp:+15550000002"])
def test_search_finds_a_customer_as_people_type_the_number(bot, fake_api, typed):
    say(bot, 1)
    say(bot, 2, author="whatsapp:" + customer(2))
    say(bot, 3, author=customer(2))  # the same customer by SMS, in another conversation
    found = read(bot, overview.search, typed)
    assert [c["conversation_sid"] for c in found["conversations"]] == [
        conversation(3), conversation(2)]


def test_search_by_conversation_or_message_sid(bot, fake_api):
    say(bot, 1)
    send(bot)
    inbound = read(bot, lambda conn: conn.execute(
        select(Reply.in_reply_to, Reply.twilio_message_sid)).one())
    for sid in (conversation(1), inbound.in_reply_to, inbound.twilio_message_sid):
        found = read(bot, overview.search, sid)
        assert [c["conversation_sid"] for c in found["conversations"]] == [conversation(1)]
    assert read(bot, overview.search, "CH" + "9" * 32)["conversations"] == []
    assert read(bot, overview.search, "+15559999999")["conversations"] == []


def test_a_thread_shows_who_wrote_what_and_the_media(bot, fake_api):
    media = json.dumps([{"Sid": "ME" + "1" * 32, "ContentType": "image/png"},
                        {"Sid": "ME" + "2" * 32, "ContentType": "application/pdf"}])
    say(bot, 1, "See attached", extra={"Media": media})
    send(bot)
    say(bot, 1, "On it", author="alice@support")
    page = read(bot, conversations.timeline, conversation(1))
    agent, first = page["events"]
    assert (agent["from"], agent["author"], agent["body"]) == ("agent", "alice@support", "On it")
    assert first["from"] == "customer" and first["media"] == ["image/png", "application/pdf"]
    assert first["channel"] == "SMS" and first["reply"]["outcome"] == "sent"
    assert first["reply"]["body"] == fake_api.created[-1].body


@pytest.mark.parametrize("reply_status", ["queued", "sending", "sent", "failed"])
@pytest.mark.parametrize("delivery", [None, "sent", "delivered", "read", "failed", "undelivered"])
@pytest.mark.parametrize("dry_run", [False, True])
def test_one_outcome_in_python_and_in_sql(app, reply_status, delivery, dry_run):
    """The dashboard (Python) and the counts (SQL) give every reply the same outcome."""
    db = services(app).db
    with db.transaction() as conn:
        conn.execute(insert(Reply).values(
            in_reply_to="IM" + "0" * 32, conversation_sid=conversation(1), author="bot",
            status=reply_status, delivery_status=delivery, dry_run=dry_run))
    with db.read() as conn:
        in_sql = conn.execute(select(status.OUTCOME)).scalar()
    assert status.reply_outcome(reply_status, delivery, dry_run) == in_sql
    assert in_sql in status.OUTCOMES
