"""Handoff through the webhook: the customer asks for a person, the bot says so once,
stays silent until an agent writes, and the dashboard and /api/ list who waits, oldest
first."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from app.services import services
from app.store.models import Conversation, Reply
from config import DEFAULT_HANDOFF_MESSAGE
from tests.support.dashboard import get, login
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


ORIGIN = "https://bot.example.com"
TOKEN = "t0k3n-for-the-dashboard-0123456789abcdef"
FIRST, SECOND, THIRD = ("CH" + c * 32 for c in "123")


@pytest.fixture
def bot(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL="https://bot.example.com",
                    AUTO_REPLY_COOLDOWN="0", HANDOFF_WINDOW="30m")


def say(app, body, conversation, author="+15558675310"):
    response = post_event(app.test_client(), message_added(
        body=body, author=author, conversation_sid=conversation),
        url="https://bot.example.com/webhooks/conversations")
    assert response.status_code == 200
    return response.headers["X-Webhook-Outcome"]


def bodies(app, conversation):
    with services(app).db.session() as s:
        return s.scalars(select(Reply.body).where(Reply.conversation_sid == conversation)
                         .order_by(Reply.id)).all()


def test_asking_for_a_human_hands_off_once_and_the_bot_waits_for_an_agent(bot):
    """One handoff message; then silence (WAITING_FOR_AGENT) until an agent writes; after
    the agent, the agent's HANDOFF_WINDOW; the conversation leaves the waiting list."""
    assert say(bot, "can I talk to a human please", FIRST) == (
        "reply queued: handoff (asked for 'talk to a human')")
    assert say(bot, "hello??", FIRST).startswith(
        "ignored: handed off, waiting for an agent: silent until")
    assert say(bot, "I want an agent!", FIRST).startswith("ignored: handed off")
    assert bodies(bot, FIRST) == [DEFAULT_HANDOFF_MESSAGE]
    with services(bot).db.session() as s:
        row = s.get(Conversation, FIRST)
        assert row.waiting_since is not None and row.handoff_at is not None
    say(bot, "Hi, Alice here, how can I help?", FIRST, author="alice@support")
    with services(bot).db.session() as s:
        row = s.get(Conversation, FIRST)
        assert row.waiting_since is None and row.handoff_at is None
    assert say(bot, "thanks", FIRST).startswith("ignored: an agent is handling")


def test_handoff_on_decline(make_app, tmp_path):
    """HANDOFF_ON_DECLINE: a message nothing answers gets the handoff message."""
    rules = tmp_path / "rules.toml"
    rules.write_text('[fallback]\ntext = "We will get back to you."\n\n[[rules]]\n'
                     'name = "hours"\nkeywords = ["hours"]\ntext = "9 to 5."\n')
    app = make_app(RESPONDER_RULES=rules, HANDOFF_ON_DECLINE="true", PUBLIC_BASE_URL=ORIGIN,
                   HANDOFF_MESSAGE="A colleague will take over.", AUTO_REPLY_COOLDOWN="0")
    assert say(app, "hours?", FIRST) == "reply queued: rule 'hours'"
    assert say(app, "my card was charged twice", FIRST) == (
        "reply queued: handoff (no rule or answer matched)")
    assert bodies(app, FIRST) == ["9 to 5.", "A colleague will take over."]


def test_no_phrases_means_nobody_is_handed_off_on_request(make_app):
    """HANDOFF_PHRASES=none: 'human' is an ordinary message."""
    app = make_app(HANDOFF_PHRASES="none", PUBLIC_BASE_URL="https://bot.example.com")
    assert say(app, "human please", FIRST) == "reply queued: default reply (no rules file)"


def test_the_dashboard_and_the_api_list_who_waits_oldest_first(bot):
    """Waiting conversations, the one waiting longest first; an agent's answer removes it."""
    for conversation in (SECOND, FIRST, THIRD):
        say(bot, "real person please", conversation)
    say(bot, "on it", THIRD, author="bob@support")
    browser = bot.test_client()
    login(browser, TOKEN)
    page = get(browser, "/admin/").get_data(as_text=True)
    section = page[page.index('id="waiting"'):page.index('id="switch"')]
    assert "Waiting for an agent (2)" in section
    assert re.findall(r"/admin/conversations/(CH\w+)", section) == [SECOND, FIRST]
    api = bot.test_client().get("/api/waiting", headers={"Authorization": f"Bearer {TOKEN}"},
                                base_url="https://bot.example.com")
    assert api.status_code == 200
    listed = api.get_json()
    assert listed["total"] == 2
    assert [c["conversation_sid"] for c in listed["conversations"]] == [SECOND, FIRST]


def waiting_sids(app):
    response = app.test_client().get("/api/waiting", headers={"Authorization": f"Bearer {TOKEN}"},
                                     base_url=ORIGIN)
    return [c["conversation_sid"] for c in response.get_json()["conversations"]]


def states(app, state=None):
    """Each conversation's state in the overview (the API's reading of it)."""
    query = f"?state={state}" if state else ""
    response = app.test_client().get(f"/api/conversations{query}", base_url=ORIGIN,
                                     headers={"Authorization": f"Bearer {TOKEN}"})
    return {c["conversation_sid"]: c["state"] for c in response.get_json()["conversations"]}


@pytest.mark.parametrize("word", ["STOP", "unsubscribe."])
def test_a_customer_who_opts_out_waits_for_nobody(bot, word):
    """STOP after a handoff: no agent may write to them now, so they leave the waiting
    list (they were first in line) and read 'opted out'; HELP does not end the wait."""
    say(bot, "talk to a human", FIRST)
    say(bot, "agent please", SECOND, author="+15550002222")
    say(bot, "HELP", SECOND, author="+15550002222")
    assert waiting_sids(bot) == [FIRST, SECOND]
    say(bot, word, FIRST)
    assert waiting_sids(bot) == [SECOND]
    assert states(bot) == {FIRST: "opted_out", SECOND: "waiting_agent"}


def test_twilio_refusing_the_handoff_message_as_opted_out_ends_the_wait(bot, fake_api):
    """Error 21610 on the handoff message (the customer had opted out by their carrier):
    the customer is recorded as opted out and no longer waits for an agent."""
    fake_api.fail(1, 400, code=21610)
    say(bot, "I need a real person", FIRST)
    assert waiting_sids(bot) == [FIRST]
    run_until_idle(services(bot).sender)
    assert waiting_sids(bot) == []
    assert states(bot) == {FIRST: "opted_out"}


def test_a_21610_receipt_ends_the_wait_in_every_conversation_of_that_customer(bot, fake_api):
    """Twilio accepted the handoff message, then its receipt failed with 21610 (the way
    Conversations usually says it); the same customer also waits in another
    conversation: they wait in neither, and both read the same in the overview."""
    participant = "MB" + "7" * 32  # the customer's, in FIRST
    post_event(bot.test_client(), message_added(
        body="talk to a human", conversation_sid=FIRST, extra={"ParticipantSid": participant}),
        url=ORIGIN + "/webhooks/conversations")
    say(bot, "agent please", SECOND)
    say(bot, "agent please", THIRD, author="+15550009999")  # someone else
    run_until_idle(services(bot).sender)
    first_reply = next(c.sid for c in fake_api.created if c.conversation_sid == FIRST)
    response = post_event(bot.test_client(), delivery_updated(
        message_sid=first_reply, conversation_sid=FIRST, status="failed", error_code="21610",
        extra={"ParticipantSid": participant}), url=ORIGIN + "/webhooks/conversations")
    assert response.status_code == 200
    assert waiting_sids(bot) == [THIRD]
    assert list(states(bot, "waiting_agent")) == [THIRD]
    assert states(bot)[FIRST] == states(bot)[SECOND] == "opted_out"


def test_a_21610_receipt_that_comes_before_the_send_is_recorded_counts(bot, fake_api):
    """Twilio is fast: the receipt's 21610 arrives while the sender still waits for the
    create's answer, when no reply has that MessageSid yet. Once the send is recorded,
    the customer is opted out and waits nowhere."""
    participant = "MB" + "7" * 32
    say(bot, "agent please", SECOND)
    client = bot.test_client()

    def receipt_first(created):
        if created.conversation_sid == FIRST:
            post_event(client, delivery_updated(
                message_sid=created.sid, conversation_sid=FIRST, status="failed",
                error_code="21610", extra={"ParticipantSid": participant}),
                url=ORIGIN + "/webhooks/conversations")

    fake_api.on_create = receipt_first
    post_event(client, message_added(
        body="talk to a human", conversation_sid=FIRST, extra={"ParticipantSid": participant}),
        url=ORIGIN + "/webhooks/conversations")
    run_until_idle(services(bot).sender)
    assert waiting_sids(bot) == []
    assert states(bot) == {FIRST: "opted_out", SECOND: "opted_out"}
    assert say(bot, "hello?", THIRD).startswith("ignored: customer opted out")


def test_stop_ends_the_wait_where_it_is_said(bot):
    """STOP is said in one conversation, and only that conversation's row is written
    then (its unit locks no other: no deadlock between simultaneous STOPs); Twilio's
    21610 to the customer, once it comes, ends their other waits (the receipt test)."""
    say(bot, "talk to a human", FIRST)
    say(bot, "talk to a human", SECOND)
    say(bot, "STOP", SECOND)
    assert waiting_sids(bot) == [FIRST]


def test_after_stop_and_start_asking_again_hands_off_again(make_app):
    """STOP ends the wait and the handoff's silence with it: after START, "talk to a
    human" hands off anew and the customer is listed again, also where the handoff's
    silence has no end (HANDOFF_WINDOW=0)."""
    app = make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN, AUTO_REPLY_COOLDOWN="0",
                   HANDOFF_WINDOW="0")
    say(app, "talk to a human", FIRST)
    say(app, "STOP", FIRST)
    assert waiting_sids(app) == []
    say(app, "START", FIRST)
    assert say(app, "talk to a human", FIRST).startswith("reply queued: handoff")
    assert waiting_sids(app) == [FIRST] and states(app) == {FIRST: "waiting_agent"}
    assert bodies(app, FIRST) == [DEFAULT_HANDOFF_MESSAGE, DEFAULT_HANDOFF_MESSAGE]


def test_another_participants_21610_does_not_opt_out_the_customer(bot, fake_api):
    """A group conversation: the handoff message reached the customer, and Twilio could
    not deliver it to another participant (21610): the customer still waits, and may
    be answered elsewhere."""
    say(bot, "talk to a human", FIRST)
    run_until_idle(services(bot).sender)
    reply = fake_api.created[-1].sid
    client = bot.test_client()
    for participant, status, code in (("MB" + "1" * 32, "delivered", "0"),
                                      ("MB" + "2" * 32, "failed", "21610")):
        post_event(client, delivery_updated(
            message_sid=reply, conversation_sid=FIRST, status=status, error_code=code,
            extra={"ParticipantSid": participant}), url=ORIGIN + "/webhooks/conversations")
    assert waiting_sids(bot) == [FIRST]
    assert say(bot, "what are your hours?", SECOND).startswith("reply queued")


def test_help_with_a_note_on_its_outcome_still_waits_and_reads_so(bot):
    """HELP whose outcome carries a note (attributes that are not JSON): still waiting,
    not 'opted out'."""
    say(bot, "talk to a human", FIRST)
    response = post_event(bot.test_client(), message_added(
        body="HELP", conversation_sid=FIRST, extra={"Attributes": "{not json"}),
        url=ORIGIN + "/webhooks/conversations")
    assert "keyword HELP;" in response.headers["X-Webhook-Outcome"]
    assert waiting_sids(bot) == [FIRST] and states(bot) == {FIRST: "waiting_agent"}


def test_a_rules_files_own_compliance_word_ends_the_wait(make_app, tmp_path):
    """compliance_keywords are opt-out words like STOP (docs/auto-reply.md)."""
    rules = tmp_path / "rules.toml"
    rules.write_text('compliance_keywords = ["ARRET"]\n[fallback]\ntext = "Noted."\n')
    app = make_app(RESPONDER_RULES=rules, ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN)
    say(app, "talk to a human", FIRST)
    say(app, "arret!", FIRST)
    assert waiting_sids(app) == [] and states(app) == {FIRST: "opted_out"}


def test_waiting_for_an_agent_means_the_same_in_the_overview_and_the_waiting_list(bot):
    """Right after the handoff message and on the bot's silence after it, the
    conversation reads 'waiting for an agent' and the state filter finds exactly what
    /api/waiting lists; after an agent's message it is 'answered by an agent', then
    'with an agent' while the bot leaves the conversation to them."""
    say(bot, "can I talk to a human please", FIRST)
    assert states(bot) == {FIRST: "waiting_agent"}  # not "answered (no receipt yet)"
    say(bot, "hello??", FIRST)
    say(bot, "What are your hours?", SECOND)
    assert states(bot) == {FIRST: "waiting_agent", SECOND: "replying"}
    assert list(states(bot, "waiting_agent")) == waiting_sids(bot) == [FIRST]
    say(bot, "Hi, Bob here", FIRST, author="bob@support")
    assert states(bot)[FIRST] == "agent_replied" and waiting_sids(bot) == []
    say(bot, "thanks Bob, one more thing", FIRST)
    assert states(bot)[FIRST] == "with_agent"
    assert states(bot, "waiting_agent") == {}


def test_the_waiting_card_names_the_customer_and_what_they_last_wrote(bot):
    """On the overview (at a phone's width too: each cell has its label)."""
    say(bot, "I want to speak to someone about my bill", FIRST, author="+15551230042")
    say(bot, "it says I owe $400", FIRST, author="+15551230042")
    browser = bot.test_client()
    login(browser, TOKEN)
    page = get(browser, "/admin/").get_data(as_text=True)
    section = page[page.index('id="waiting"'):page.index('id="switch"')]
    assert "+15551230042" in section and "it says I owe $400" in section
    assert 'data-label="Customer"' in section and 'data-label="They wrote"' in section


def test_a_handoff_message_that_failed_says_so_while_the_customer_waits(bot, fake_api):
    """Still waiting for an agent, and the overview says the customer never got the
    handoff message (its error), so the agent knows."""
    fake_api.fail(1, 400, code=30008)
    say(bot, "talk to a human", FIRST)
    run_until_idle(services(bot).sender)
    assert states(bot) == {FIRST: "waiting_agent"}
    browser = bot.test_client()
    login(browser, TOKEN)
    page = get(browser, "/admin/").get_data(as_text=True)
    row = page[page.index('data-state="waiting_agent"'):]
    row = row[:row.index("</tr>")]
    assert "waiting for an agent" in row and "30008" in row


def test_the_waiting_filter_finds_them_however_many_conversations_came_since(make_app):
    """The overview's state filter reads at most 2,000 messages for other states; for
    'waiting for an agent' it reads the waiting conversations themselves: exact, paged."""
    app = make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN, AUTO_REPLY_COOLDOWN="1h")
    waiting = [f"CH{n:032x}" for n in range(3)]
    for sid in waiting:
        say(app, "talk to a human", sid)
    for n in range(2_050):  # a busy morning since: 2,050 other conversations
        say(app, "hello", f"CH{n + 1000:032x}", author=f"+1555{n:07d}")
    assert states(app, "waiting_agent") == dict.fromkeys(waiting, "waiting_agent")
    auth = {"Authorization": f"Bearer {TOKEN}"}
    client = app.test_client()
    first = client.get("/api/conversations?state=waiting_agent&limit=2", headers=auth,
                       base_url=ORIGIN).get_json()
    assert [c["conversation_sid"] for c in first["conversations"]] == waiting[:0:-1]
    rest = client.get(f"/api/conversations?state=waiting_agent&limit=2&before={first['next']}",
                      headers=auth, base_url=ORIGIN).get_json()
    assert [c["conversation_sid"] for c in rest["conversations"]] == waiting[:1]
    assert rest["next"] is None


def test_after_stop_the_bot_stays_silent_where_it_handed_off(bot):
    """STOP ends the wait for an agent, not the handoff's silence: "sorry, wrong button"
    gets no automated reply (on WhatsApp nothing else would stop it)."""
    say(bot, "talk to a human", FIRST)
    say(bot, "STOP", FIRST)
    assert say(bot, "sorry, wrong button, I still need someone", FIRST).startswith(
        "ignored: handed off, waiting for an agent")
    assert bodies(bot, FIRST) == [DEFAULT_HANDOFF_MESSAGE]
    assert waiting_sids(bot) == []


def test_someone_else_who_opted_out_does_not_take_the_customer_off_the_list(bot, fake_api):
    """A group conversation: the customer asked for a person; another participant, who
    opted out elsewhere (Twilio refused them 21610), writes too. The customer still
    waits; that participant's conversation reads 'opted out'."""
    other = "+15550003333"
    fake_api.fail(1, 400, code=21610)
    say(bot, "hello", THIRD, author=other)
    run_until_idle(services(bot).sender)
    say(bot, "talk to a human", FIRST)
    say(bot, "me too", FIRST, author=other)
    assert waiting_sids(bot) == [FIRST]
    assert states(bot)[THIRD] == "opted_out" and states(bot)[FIRST] == "waiting_agent"
