"""Fields: a signed webhook's malformed or unstorable value is absent with a note, or a
400 naming it when the event cannot do without it; never a 500, never in a URL.
(Issue 17, points 3 and 5.)"""

import pytest
from sqlalchemy import select

from app.services import services
from app.store.models import DeliveryReceipt, ProcessedEvent, Reply
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event

HEX = "0123456789abcdef" * 2
DEEP = 975  # under 2 KB: a chat user can set it on their own message


def outcome(response) -> str:
    return response.headers.get("X-Webhook-Outcome", "")


def stored_replies(app):
    with services(app).db.session() as s:
        return s.scalars(select(Reply)).all()


# -- point 3: every field parsed totally --------------------------------------------------

@pytest.mark.parametrize("field, value", [
    ("DateCreated", "9999-12-31T23:59:59-05:00"),  # was OverflowError: a 500
    ("DateCreated", "0001-01-01T00:00:00+05:00"),  # was OverflowError: a 500
    ("DateCreated", "9999-12-31T23:59:59.999999Z"),
    ("DateCreated", "not a date"),
    ("Attributes", "[" * DEEP + "]" * DEEP),  # was RecursionError: a 500
    ("Attributes", '{"a":' * 5000 + "1" + "}" * 5000),
    ("Attributes", "{not json"),
    ("Index", "99999999999999999999"),
    ("Index", "-1"),
    ("RetryCount", "\u0661"),
    ("Media", "[" * DEEP + "]" * DEEP),
    ("Media", '{"Sid": "ME1"}'),
    ("Source", "S" * 40),  # was a DataError on PostgreSQL: longer than channel's 16
    ("Source", "\u00df" * 16),  # 'ß'.upper() is 'SS': 32 characters
    ("ParticipantSid", "MB" + HEX[:-1]),
    ("ParticipantSid", "IM" + HEX),
    ("AccountSid", "AC" + HEX + "/x"),
    ("ChatServiceSid", "IS../../x"),
    ("MessagingServiceSid", "mg" + HEX),
])
def test_malformed_field_is_ignored_with_a_note(app, client, sender, fake_api, field, value):
    """The message is answered as if the field were absent; the outcome says so."""
    params = fake_api.message_added(extra={field: value})
    response = post_event(client, params)
    assert response.status_code == 200, response.get_data(as_text=True)
    assert outcome(response).startswith("reply queued")
    assert f"{field} ignored: " in outcome(response)
    with services(app).db.session() as s:
        [event] = s.scalars(select(ProcessedEvent)).all()
    assert f"{field} ignored" in event.outcome  # in the stored claim too
    assert run_until_idle(sender) == 1
    [reply] = stored_replies(app)
    assert reply.conversation_sid == params["ConversationSid"]


def test_ignored_fields_are_left_out_of_what_is_stored(app, client, sender):
    """A malformed DateCreated means 'now'; a malformed Source, no channel; a malformed
    ParticipantSid, no participant."""
    post_event(client, message_added(extra={
        "DateCreated": "9999-12-31T23:59:59-05:00", "Source": "WHATS" * 8,
        "ParticipantSid": "MB" + HEX + "?"}))
    [reply] = stored_replies(app)
    assert reply.channel is None and reply.participant_sid is None
    assert abs((reply.message_at - reply.created_at).total_seconds()) < 60


def test_a_good_date_is_still_used(app, client):
    post_event(client, message_added(extra={"DateCreated": "2024-12-18T14:35:28.423+05:00"}))
    [reply] = stored_replies(app)
    assert reply.message_at.isoformat() == "2024-12-18T09:35:28.423000"


def test_a_note_never_echoes_the_value(client):
    """Notes name the field and the problem: the value is the sender's, not ours to show."""
    response = post_event(client, message_added(extra={"Attributes": "{secret <script>"}))
    assert "secret" not in outcome(response) and "script" not in outcome(response)


@pytest.mark.parametrize("field, value", [
    ("ErrorCode", "99999999999999999999"),
    ("ErrorCode", "\u00b2"),
    ("DateUpdated", "0001-01-01T00:00:00+05:00"),
    ("DateCreated", "9999-12-31T23:59:59-05:00"),
    ("ChannelMessageSid", "SM" + HEX + "0"),
    ("ParticipantSid", "MB"),
])
def test_receipt_with_a_malformed_optional_field_is_recorded(app, client, field, value):
    params = delivery_updated(status="failed", error_code="30003", extra={field: value})
    response = post_event(client, params)
    assert response.status_code == 200
    assert outcome(response).startswith("receipt failed")
    assert f"{field} ignored: " in outcome(response)
    with services(app).db.session() as s:
        stored = s.scalars(select(DeliveryReceipt)).one()
    assert stored.status == "failed"
    assert getattr(stored, {"ErrorCode": "error_code", "ChannelMessageSid": "channel_message_sid",
                            "ParticipantSid": "participant_sid"}.get(field, "status")) in (
        None, "failed")


@pytest.mark.parametrize("status", [
    "\u0130" * 16,  # 'İ'.lower() is two characters: 32, past the column's 16
    "x" * 17, "   ",
])
def test_unusable_status_is_400_naming_it(app, client, status):
    """Status is what a receipt is: without a usable one there is nothing to record."""
    response = post_event(client, delivery_updated(status=status))
    assert response.status_code == 400
    assert "Status" in response.get_data(as_text=True)
    with services(app).db.session() as s:
        assert s.scalars(select(DeliveryReceipt)).all() == []


def test_status_keeps_its_tolerance_for_case_and_spaces(app, client):
    assert post_event(client, delivery_updated(status=" Delivered ")).status_code == 200
    with services(app).db.session() as s:
        assert s.scalars(select(DeliveryReceipt.status)).one() == "delivered"


def test_nul_in_any_field_is_still_400(client):
    """A NUL cannot be stored on PostgreSQL and is never Twilio's: refused before all else."""
    response = post_event(client, message_added(extra={"FriendlyName": "a\x00b"}))
    assert response.status_code == 400 and "NUL" in response.get_data(as_text=True)


# -- point 5: SIDs by shape, never steering a URL --------------------------------------------

STEERING = [
    "CH" + HEX[:8] + "/../../Services/IS" + HEX[:8] + "/Conversations/CH" + HEX[:6],
    "CH" + HEX + "/../../Services/IS" + HEX + "/Conversations/CH" + HEX,
    "CH" + HEX + "?Order=desc",  # `?` cut the path short: the reply went to CH...
    "CH" + HEX + "#x",
    "CH" + HEX[:-2] + "%2F",
    "CH" + HEX[:-1],
    "CH" + HEX + "0",
    "ch" + HEX,
    "IM" + HEX,  # another kind of SID
    "CH" + HEX[:-1] + "\u0661",
    "CH" + HEX + "\n",
]


@pytest.mark.parametrize("sid", STEERING)
def test_conversation_sid_of_the_wrong_shape_is_400_and_reaches_no_url(app, client, sender,
                                                                      fake_api, sid):
    """ConversationSid goes into the sender's URL: anything but CH + 32 hex digits is
    refused, and nothing is stored or sent."""
    response = post_event(client, message_added(conversation_sid=sid))
    assert response.status_code == 400
    assert "malformed required field ConversationSid" in response.get_data(as_text=True)
    assert run_until_idle(sender) == 0
    assert fake_api.calls == []
    assert stored_replies(app) == []


@pytest.mark.parametrize("event, field", [
    (message_added, "MessageSid"),
    (delivery_updated, "MessageSid"),
    (delivery_updated, "ConversationSid"),
    (delivery_updated, "DeliveryReceiptSid"),
])
def test_other_required_sids_of_the_wrong_shape_are_400(client, event, field):
    response = post_event(client, event(extra={field: field[:2].upper() + HEX + "/.."}))
    assert response.status_code == 400
    assert f"malformed required field {field}" in response.get_data(as_text=True)


def test_a_good_conversation_sid_goes_where_it_says(client, sender, fake_api):
    """The same path as ever for a well-formed SID (upper-case hex too)."""
    sid = "CH" + HEX.upper()
    assert post_event(client, message_added(conversation_sid=sid)).status_code == 200
    assert run_until_idle(sender) == 1
    assert fake_api.calls == [("POST", f"/v1/Conversations/{sid}/Messages")]


# -- the Event itself ------------------------------------------------------------------------

def test_event_keeps_usable_values_and_names_the_others():
    """Left out, named with the problem (never the value); a required one is a 400."""
    from app.errors import MissingField
    from app.pipeline.events import Event

    event = Event.from_params({"EventType": "onMessageAdded", "ConversationSid": "CH1/..",
                               "Body": "hi", "Index": "99999999999999999999", "Media": ""})
    assert (event.get("ConversationSid"), event.get("Index"), event.get("Body")) == (
        None, None, "hi")
    assert event.notes == ("ConversationSid ignored: not CH + 32 hex digits",
                           "Index ignored: not an integer in 0..2147483647")
    with pytest.raises(MissingField, match="malformed required field ConversationSid: not CH"):
        event.require("ConversationSid")
    with pytest.raises(MissingField, match="missing the required field MessageSid"):
        event.require("MessageSid")


@pytest.mark.parametrize("token, kept", [
    ("4f8c2a8e-7d1b-4c35-9a57-1f0e0b5c9d21", True), ("a\x00b", False), ("caf\u00e9", False),
    ("a\x1bb", False),
])
def test_only_a_printable_idempotency_token_keys_the_claim(token, kept):
    """The token goes into the claim's key (a database column): a NUL or a control
    character there is not Twilio's; the event is keyed by its parameters instead."""
    from app.pipeline.events import Event

    event = Event.from_form({"EventType": "onParticipantAdded"},
                            {"I-Twilio-Idempotency-Token": token})
    assert (event.idempotency_token == token) is kept
    assert event.claim_key.startswith("token:" if kept else "derived:")
