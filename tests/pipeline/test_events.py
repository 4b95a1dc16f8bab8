"""Events: every Conversations event type is accepted; bad input is a clear 4xx, never a 5xx."""

import logging

import pytest

from app.cli import sample_events
from app.pipeline.events import POST_EVENTS, PRE_EVENTS
from tests.support.sending import run_until_idle
from tests.support.webhooks import ACCOUNT_SID, message_added, post_event, sign

PATH = "/webhooks/conversations"


@pytest.mark.parametrize("event_type", sorted(POST_EVENTS))
def test_every_post_event_is_accepted(client, event_type):
    """Each documented post-event gets 2xx (handlers or not)."""
    params = sample_events.build(event_type, account_sid=ACCOUNT_SID)
    assert post_event(client, params).status_code == 200


@pytest.mark.parametrize("event_type", sorted(PRE_EVENTS))
def test_pre_events_publish_unchanged(client, event_type):
    """A pre-event gets 200 with an empty body: Twilio publishes the change unchanged."""
    params = sample_events.build(event_type, account_sid=ACCOUNT_SID)
    response = post_event(client, params, path=PATH + "/pre")
    assert response.status_code == 200
    assert response.data == b""


def test_other_events_are_logged_at_debug(client, caplog):
    """Events without a handler are accepted and leave a DEBUG line."""
    caplog.set_level(logging.DEBUG, logger="app.pipeline.processor")
    post_event(client, sample_events.build("onParticipantAdded", account_sid=ACCOUNT_SID))
    [record] = [r for r in caplog.records if "onParticipantAdded" in r.getMessage()]
    assert record.levelno == logging.DEBUG


def test_unknown_event_type_is_accepted_and_logged_at_info(client, caplog):
    """Twilio adds events without notice: an unknown one is 2xx and one INFO line."""
    caplog.set_level(logging.DEBUG, logger="app.pipeline.processor")
    params = sample_events.build("onMessageAdded", account_sid=ACCOUNT_SID,
                           extra={"EventType": "onSomethingNew"})
    response = post_event(client, params)
    assert response.status_code == 200
    [record] = [r for r in caplog.records if "onSomethingNew" in r.getMessage()]
    assert record.levelno == logging.INFO


def test_unknown_parameters_are_tolerated(client, fake_api, sender):
    """New parameters Twilio may add are signed and ignored."""
    params = message_added(extra={"NewThing": "x", "Media": '[{"Sid": "ME1"}]'})
    assert post_event(client, params).status_code == 200
    assert run_until_idle(sender) == 1


@pytest.mark.parametrize("event_type, field", [
    ("onMessageAdded", "MessageSid"),
    ("onMessageAdded", "ConversationSid"),
    ("onMessageAdded", "Author"),
    ("onDeliveryUpdated", "DeliveryReceiptSid"),
    ("onDeliveryUpdated", "Status"),
    ("onDeliveryUpdated", "MessageSid"),
])
def test_missing_required_field_is_400_naming_it(client, event_type, field):
    """A known event without a field its handler needs is 400, and the body names the field."""
    params = sample_events.build(event_type, account_sid=ACCOUNT_SID)
    del params[field]
    response = post_event(client, params)
    assert response.status_code == 400
    assert field in response.get_data(as_text=True)


def test_missing_event_type_is_400(client):
    params = message_added()
    del params["EventType"]
    response = post_event(client, params)
    assert response.status_code == 400
    assert b"EventType" in response.data


def test_oversized_body_is_413(make_app):
    """Bodies over WEBHOOK_MAX_BYTES are refused with 413 before anything is parsed."""
    client = make_app(WEBHOOK_MAX_BYTES=2048).test_client()
    params = message_added(body="x" * 4000)
    assert post_event(client, params).status_code == 413


@pytest.mark.parametrize("content_type, body", [
    ("application/json", '{"EventType": "onMessageAdded"}'),
    ("text/plain", "EventType=onMessageAdded"),
    ("multipart/form-data; boundary=x", "--x--"),
])
def test_wrong_content_type_is_4xx(client, content_type, body):
    """Only form posts are webhooks; anything else is a 4xx (403 unsigned, 415 signed)."""
    url = "http://localhost" + PATH
    response = client.post(PATH, data=body, headers={
        "Content-Type": content_type, "X-Twilio-Signature": sign({}, url)})
    assert response.status_code in (400, 403, 415)
    assert response.status_code == 415 or b"Signature" in response.data


@pytest.mark.parametrize("body", [
    b"%%%", b"EventType=%ZZ", b"\xff\xfe\x00garbage", b"a=1&&&=&b", b"=" * 100,
    b"EventType=onMessageAdded&EventType=onDeliveryUpdated",
])
def test_malformed_forms_are_4xx(client, body):
    """Malformed or undecodable forms are rejected (unsigned: 403), never a 5xx."""
    response = client.post(PATH, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded", "X-Twilio-Signature": "x"})
    assert 400 <= response.status_code < 500


def test_wrong_method_and_path_are_4xx(client):
    assert client.get(PATH).status_code == 405
    assert client.post("/nope").status_code == 404


@pytest.mark.parametrize("field, value", [
    ("MessageSid", "IM" + "a" * 500),
    ("ConversationSid", "CH\x00abc"),
    ("Author", "x" * 300),
    ("Body", "hello\x00world"),
])
def test_values_the_database_cannot_store_are_400(client, field, value):
    """NUL characters and over-long identifiers are refused before they reach the database."""
    params = message_added(extra={field: value})
    response = post_event(client, params)
    assert response.status_code == 400
    assert field in response.get_data(as_text=True) or "NUL" in response.get_data(as_text=True)


@pytest.mark.parametrize("code", ["99999999999999999999", "-5", "3.5", "abc"])
def test_odd_error_codes_are_stored_as_no_code(client, code):
    from tests.support.webhooks import delivery_updated
    response = post_event(client, delivery_updated(status="failed", error_code=code))
    assert response.status_code == 200
