"""Auto-reply: one reply per customer message, sent through the fake API after the 2xx."""

import json

import pytest
from sqlalchemy import select

from app.services import services
from app.store.models import ProcessedEvent, Reply
from tests.conftest import message_added, post_event


def replies(app):
    with services(app).db.session() as s:
        return s.scalars(select(Reply).order_by(Reply.id)).all()


def test_customer_message_gets_one_reply_after_the_ack(app, client, sender, fake_api):
    """The webhook answers before anything is sent; the sender then sends exactly one reply."""
    params = message_added(body="Where is my order?")
    response = post_event(client, params)
    assert response.status_code == 200
    assert response.data == b""
    assert response.headers["X-Webhook-Outcome"] == "reply queued"
    assert fake_api.created == []  # nothing sent inside the request

    assert sender.run_until_idle() == 1
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
    ("support-bot", "{}", "written by the bot itself"),
    ("+15550001111", '{"autoReply": true, "inReplyTo": "IMx"}', "marked as an auto-reply"),
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
    assert sender.run_until_idle() == 0
    assert fake_api.created == []
    with services(app).db.session() as s:
        event = s.scalars(select(ProcessedEvent)).one()
    assert why in event.outcome


def test_reply_loop_is_broken_when_our_reply_comes_back(app, client, sender, fake_api):
    """Our reply fires onMessageAdded (webhooks enabled); answering it would loop forever."""
    post_event(client, message_added())
    sender.run_until_idle()
    [created] = fake_api.created
    echo = message_added(author=created.form["Author"], message_sid=created.sid,
                         conversation_sid=created.conversation_sid,
                         extra={"Attributes": created.form["Attributes"]})
    assert post_event(client, echo).status_code == 200
    assert sender.run_until_idle() == 0
    assert len(fake_api.created) == 1


def test_custom_reply_text_and_identity(env, fake_api):
    """AUTO_REPLY_TEXT and BOT_IDENTITY shape the reply."""
    from app import create_app
    app = create_app({**env, "AUTO_REPLY_TEXT": "Hi! We're on it.", "BOT_IDENTITY": "helper"})
    post_event(app.test_client(), message_added())
    services(app).sender.run_until_idle()
    [created] = fake_api.created
    assert created.form == {**created.form, "Author": "helper", "Body": "Hi! We're on it."}
