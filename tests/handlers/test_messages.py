"""Auto-reply: one reply per customer message, sent through the fake API after the 2xx."""

import json

import pytest
from sqlalchemy import select, update

from app.services import services
from app.store.models import ProcessedEvent, Reply, utcnow
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event


def replies(app):
    with services(app).db.session() as s:
        return s.scalars(select(Reply).order_by(Reply.id)).all()


def test_customer_message_gets_one_reply_after_the_ack(app, client, sender, fake_api):
    """The webhook answers before anything is sent; the sender then sends exactly one reply."""
    params = fake_api.message_added(body="Where is my order?")
    response = post_event(client, params)
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["X-Webhook-Outcome"] == "reply queued: default reply (no rules file)"
    assert fake_api.created == []  # nothing sent inside the request

    assert run_until_idle(sender) == 1
    [created] = fake_api.created
    assert created.conversation_sid == params["ConversationSid"]
    assert created.form["Author"] == "support-bot"
    assert created.form["Body"] == services(app).settings.bot.auto_reply_text
    assert created.headers["X-Twilio-Webhook-Enabled"] == "true"
    assert json.loads(created.form["Attributes"]) == {
        "autoReply": True, "inReplyTo": params["MessageSid"]}
    [reply] = replies(app)
    assert reply.status == "sent" and reply.twilio_message_sid == created.sid


@pytest.mark.parametrize("author, attributes, why", [
    ("support-bot", "{}", "our own message (loop guard): author support-bot"),
    ("+15550001111", '{"autoReply": true, "inReplyTo": "IMx"}', "autoReply mark"),
    ("alice@support", "{}", "written by an agent"),
    ("bob@support", "{}", "written by an agent"),
    ("system", "{}", "written by the REST API"),
])
def test_no_reply_to_bot_agents_or_system(app, client, sender, fake_api, author, attributes, why):
    """The loop guard: our own messages, agents and REST 'system' messages get no reply."""
    params = message_added(author=author, extra={"Attributes": attributes})
    response = post_event(client, params)
    assert response.status_code == 200
    assert why in response.headers["X-Webhook-Outcome"]
    assert run_until_idle(sender) == 0
    assert fake_api.created == []
    with services(app).db.session() as s:
        event = s.scalars(select(ProcessedEvent)).one()
    assert why in event.outcome


def test_reply_loop_is_broken_when_our_reply_comes_back(app, client, sender, fake_api):
    """Our reply fires onMessageAdded (webhooks enabled); answering it would loop forever."""
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    [created] = fake_api.created
    echo = fake_api.message_added(author=created.form["Author"], message_sid=created.sid,
                         conversation_sid=created.conversation_sid,
                         extra={"Attributes": created.form["Attributes"]})
    assert post_event(client, echo).status_code == 200
    assert run_until_idle(sender) == 0
    assert len(fake_api.created) == 1


def test_custom_reply_text_and_identity(make_app, fake_api):
    """AUTO_REPLY_TEXT and BOT_IDENTITY shape the reply."""
    app = make_app(AUTO_REPLY_TEXT="Hi! We're on it.", BOT_IDENTITY="helper")
    post_event(app.test_client(), fake_api.message_added())
    run_until_idle(services(app).sender)
    [created] = fake_api.created
    assert created.form == {**created.form, "Author": "helper", "Body": "Hi! We're on it."}


def conversation_post(client, conversation, body="hello", author="+15550001111", **extra):
    params = message_added(conversation_sid=conversation, body=body, author=author,
                           extra=extra or None)
    return post_event(client, params)


def outcome(response):
    return response.headers["X-Webhook-Outcome"]


def test_cooldown_one_reply_per_conversation(app, client, sender, fake_api):
    """Three messages in one conversation within the cooldown get one reply; the other
    two are recorded as silent with the reason."""
    conversation = "CH" + "a" * 32
    first, second, third = (conversation_post(client, conversation, f"message {n}")
                            for n in range(3))
    assert outcome(first).startswith("reply queued")
    assert outcome(second).startswith("ignored: cooldown after our last reply: cooldown until")
    assert outcome(third).startswith("ignored: cooldown")
    assert run_until_idle(sender) == 1
    with services(app).db.session() as s:
        reasons = s.scalars(select(ProcessedEvent.reason).order_by(ProcessedEvent.id)).all()
    assert reasons == ["REPLY", "COOLDOWN", "COOLDOWN"]


@pytest.mark.parametrize("body", ["STOP", " stop! ", "Unsubscribe", "HELP", "info.", "START"])
def test_compliance_keywords_are_never_answered(client, sender, fake_api, body):
    """Carriers and Twilio answer STOP, HELP, START...: the bot stays out of it."""
    response = conversation_post(client, "CH" + "b" * 32, body)
    assert outcome(response).startswith("ignored: compliance keyword")
    assert run_until_idle(sender) == 0


@pytest.mark.parametrize("keyword, cancels", [("STOP", True), ("cancel", True),
                                              ("HELP", False), ("START", False)])
def test_stop_cancels_a_reply_still_waiting_to_go_out(app, client, sender, fake_api,
                                                      keyword, cancels):
    """A reply queued (or waiting to be sent again) when the customer sends STOP is never
    sent: on WhatsApp or a chat nothing at Twilio would stop it, and one went out 57 s
    after STOP. HELP and START leave it: the customer still listens."""
    fake_api.any_conversation = True
    conversation = "CH" + "c" * 32
    assert outcome(conversation_post(client, conversation, "where is my order?")) \
        .startswith("reply queued")
    assert outcome(conversation_post(client, conversation, keyword)) \
        .startswith("ignored: compliance keyword")
    assert run_until_idle(sender) == (0 if cancels else 1)
    [reply] = replies(app)
    if cancels:
        assert (reply.status, reply.error_code) == ("failed", 21610)
        assert reply.error_message == (f"not sent: the customer sent {keyword!r} before it "
                                       "went out")
        assert fake_api.created == []
    else:
        assert reply.status == "sent" and len(fake_api.created) == 1


def test_stop_leaves_other_customers_replies_and_one_maybe_sent(make_app, fake_api):
    """In a group conversation another customer still listens; a reply whose earlier
    create may have reached Twilio is for the sender to look up (failing it would record
    "not sent" for a message the customer may have)."""
    fake_api.any_conversation = True
    app = make_app(AUTO_REPLY_COOLDOWN="0")
    client, conversation = app.test_client(), "CH" + "d" * 32
    for author in ("+15550001111", "+15550002222", "+15550003333"):
        assert outcome(conversation_post(client, conversation, "where is my order?",
                                         author=author)).startswith("reply queued")
    with services(app).db.transaction() as conn:  # the third: an earlier create unsure
        conn.execute(update(Reply).where(Reply.customer == "+15550003333")
                     .values(unsure_at=utcnow()))
    for author in ("+15550001111", "+15550003333"):
        conversation_post(client, conversation, "STOP", author=author)
    assert [(r.customer, r.status) for r in replies(app)] == [
        ("+15550001111", "failed"), ("+15550002222", "queued"), ("+15550003333", "queued")]


def test_a_sentence_with_a_keyword_is_answered(client, sender):
    response = conversation_post(client, "CH" + "c" * 32, "please stop sending me the wrong size")
    assert outcome(response).startswith("reply queued")


def test_handoff_an_agent_writing_silences_the_bot(client, sender, fake_api):
    """After an agent wrote, customers in that conversation get no automated reply."""
    conversation = "CH" + "d" * 32
    conversation_post(client, conversation, "I'm Alice, looking into it", author="alice@support")
    response = conversation_post(client, conversation, "thanks, any news?")
    assert outcome(response).startswith("ignored: an agent is handling the conversation")
    assert run_until_idle(sender) == 0


def test_budget_caps_replies_whatever_the_cooldown(make_app, fake_api):
    """With the cooldown off, AUTO_REPLY_BUDGET still caps replies per conversation-hour."""
    app = make_app(AUTO_REPLY_COOLDOWN="0", AUTO_REPLY_BUDGET="2")
    client = app.test_client()
    outcomes = [outcome(conversation_post(client, "CH" + "e" * 32, f"m{n}")) for n in range(4)]
    assert [o.split(":")[0] for o in outcomes] == [
        "reply queued", "reply queued", "ignored", "ignored"]
    assert outcomes[-1].startswith("ignored: hourly reply budget spent")


def test_disabled_by_setting_records_but_sends_nothing(make_app, fake_api):
    """AUTO_REPLY_ENABLED=false: verified, recorded, 2xx, decision 'disabled', no reply."""
    app = make_app(AUTO_REPLY_ENABLED="false")
    response = conversation_post(app.test_client(), "CH" + "f" * 32)
    assert response.status_code == 200
    assert outcome(response).startswith("ignored: auto-reply disabled")
    assert run_until_idle(services(app).sender) == 0


def test_runtime_switch_is_obeyed_without_a_restart(app, client, runner, sender, monkeypatch):
    """`autoreply off` stops replies on every instance within the switch cache; `on`
    resumes them; `status` says which and why."""
    from app.pipeline import state

    monkeypatch.setattr(state, "SWITCH_CACHE_SECONDS", 0)
    assert "on: AUTO_REPLY_ENABLED" in runner.invoke(args=["autoreply", "status"]).output
    assert runner.invoke(args=["autoreply", "off"]).exit_code == 0
    off = conversation_post(client, "CH" + "1" * 32)
    assert outcome(off).startswith("ignored: auto-reply disabled")
    assert "off: runtime switch" in runner.invoke(args=["autoreply", "status"]).output
    runner.invoke(args=["autoreply", "on"])
    assert outcome(conversation_post(client, "CH" + "2" * 32)).startswith("reply queued")


def receipt_for_the_reply(client, sender, fake_api, conversation, customer, participant,
                          **receipt):
    """The customer writes, the bot's reply goes out, then a receipt for it (from that
    customer's participant) arrives with `receipt`'s status and error code."""
    conversation_post(client, fake_api.add_conversation(conversation), "hi", author=customer,
                      ParticipantSid=participant)
    run_until_idle(sender)
    [created] = fake_api.created
    post_event(client, delivery_updated(
        conversation_sid=created.conversation_sid, message_sid=created.sid,
        extra={"ParticipantSid": participant}, **receipt))


def test_opted_out_customer_is_left_alone_until_start(app, client, sender, fake_api):
    """A receipt with ErrorCode=21610 for our reply opts its customer out in every
    conversation; START opts them back in (Twilio answers it; the bot stays silent)."""

    customer, participant = "+15550002222", "MB" + "2" * 32
    receipt_for_the_reply(client, sender, fake_api, "CH" + "3" * 32, customer, participant,
                          status="failed", error_code="21610")
    elsewhere = conversation_post(client, "CH" + "4" * 32, "hello again", author=customer)
    assert outcome(elsewhere).startswith("ignored: customer opted out")
    back = conversation_post(client, "CH" + "4" * 32, "START", author=customer)
    assert outcome(back).startswith("ignored: customer opted back in")
    answered = conversation_post(client, "CH" + "5" * 32, "one more question", author=customer)
    assert outcome(answered).startswith("reply queued")


@pytest.mark.parametrize("status", ["delivered", "read", "sent"])
def test_a_receipt_that_is_no_failure_opts_no_one_out_whatever_its_code(
        app, client, sender, fake_api, status):
    """Twilio may send an ErrorCode on a receipt that did not fail: 21610 on a delivered
    reply says nothing about the customer, who must keep getting answers."""
    customer, participant = "+15550003333", "MB" + "3" * 32
    receipt_for_the_reply(client, sender, fake_api, "CH" + "7" * 32, customer, participant,
                          status=status, error_code="21610")
    elsewhere = conversation_post(client, "CH" + "8" * 32, "hello again", author=customer)
    assert outcome(elsewhere).startswith("reply queued"), outcome(elsewhere)


def test_why_explains_a_decision(app, client, runner, sender, fake_api):
    """`why IM...` prints the decision, the rule and what became of the reply."""
    params = fake_api.message_added()
    post_event(client, params)
    run_until_idle(sender)
    result = runner.invoke(args=["why", params["MessageSid"]])
    assert result.exit_code == 0, result.output
    assert "decision: REPLY (rule fallback)" in result.output
    assert "reply #1: sent, no receipt yet, 1 attempt(s)" in result.output
    missing = runner.invoke(args=["why", "IM" + "0" * 32])
    assert missing.exit_code == 1 and "no record" in missing.output


def test_an_agent_message_keeps_the_customers_last_message_time(app, client):
    """The conversation remembers when the customer last wrote, whoever wrote since."""
    from app.store.models import Conversation

    conversation = "CH" + "6" * 32
    conversation_post(client, conversation, "hello")
    conversation_post(client, conversation, "on it", author="alice@support")
    with services(app).db.session() as s:
        row = s.get(Conversation, conversation)
    assert row.last_inbound_at is not None and row.last_agent_at is not None
    assert row.inbound_count == 1


def test_our_own_reply_coming_back_costs_no_state_read(app, client, sender, fake_api,
                                                        monkeypatch):
    """Every reply fires onMessageAdded again (webhooks enabled): the loop guard answers
    it without reading or writing the conversation's state."""
    post_event(client, fake_api.message_added())
    run_until_idle(sender)
    [created] = fake_api.created
    reads = []
    reader = services(app).processor.state
    real = reader.conversation
    monkeypatch.setattr(reader, "conversation", lambda *a, **k: reads.append(a) or real(*a, **k))
    echo = message_added(author=created.form["Author"], message_sid=created.sid,
                         conversation_sid=created.conversation_sid,
                         extra={"Attributes": created.form["Attributes"]})
    response = post_event(client, echo)
    assert response.headers["X-Webhook-Outcome"].startswith("ignored: our own message")
    assert reads == []


def test_a_defect_in_the_decision_is_recorded_and_answered_200_not_lost(
        app, client, sender, fake_api, monkeypatch, caplog):
    """Twilio never sends a webhook again: a decision that raises (a message no test
    foresaw) must not become a 500 that loses the message. It is recorded, silent, with
    the defect named where the operator looks (the outcome, `why`) and its traceback in
    the log. (Simulated: the decision's first step raises.)"""
    from app.autoreply import decision

    def defect(*_args, **_kwargs):
        raise RuntimeError("a defect")

    monkeypatch.setattr(decision, "loop_guard", defect)
    params = fake_api.message_added(body="Where is my order?")
    response = post_event(client, params)
    assert response.status_code == 200
    assert response.headers["X-Webhook-Outcome"].startswith(
        "ignored: the decision failed (a defect), no reply: RuntimeError")
    assert "Traceback" in caplog.text and "RuntimeError: a defect" in caplog.text
    assert run_until_idle(sender) == 0 and fake_api.created == []
    why = app.test_cli_runner().invoke(args=["why", params["MessageSid"]])
    assert "the decision failed" in why.output, why.output
    assert post_event(client, params).headers["X-Webhook-Outcome"].startswith("duplicate")
