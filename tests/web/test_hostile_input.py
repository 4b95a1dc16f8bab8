"""Hostile input: random bodies, encodings, headers and sizes never produce a 5xx."""

from urllib.parse import urlencode

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from app.pipeline.events import KNOWN_EVENTS
from tests.support.webhooks import sign

PATHS = ["/webhooks/conversations", "/webhooks/conversations/pre", "/webhooks/conversations/"]
CONTENT_TYPES = st.sampled_from([
    "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8",
    "application/x-www-form-urlencoded; charset=latin-1", "application/json", "text/plain",
    "multipart/form-data; boundary=xyz", "multipart/form-data", "", "*/*", "garbage/",
])
TEXT = st.text(max_size=200)  # any unicode, NULs and surrogates excluded by hypothesis
FIELD_NAMES = st.sampled_from([
    "EventType", "ConversationSid", "MessageSid", "Author", "Body", "Attributes",
    "DeliveryReceiptSid", "Status", "ErrorCode", "ParticipantSid", "Media", "Index",
]) | st.text(min_size=1, max_size=20)
EVENT_TYPES = st.sampled_from(sorted(KNOWN_EVENTS)) | TEXT
SLOW = settings(max_examples=150, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow])


def as_header(text: str) -> str:
    """What HTTP can carry in a header value: latin-1 bytes without line breaks."""
    raw = text.encode("utf-8", "ignore").decode("latin-1")
    return raw.replace("\r", " ").replace("\n", " ")


@SLOW
@given(body=st.binary(max_size=4096)
       | st.builds(lambda chunk, times: chunk * times,  # large bodies, cheaply
                   st.binary(min_size=1, max_size=64), st.integers(1000, 10_000)),
       content_type=CONTENT_TYPES, path=st.sampled_from(PATHS),
       signature=st.none() | TEXT,
       token=st.none() | TEXT | st.text(min_size=1000, max_size=2000))
def test_random_bodies_and_headers_are_never_5xx(client, body, content_type, path, signature,
                                                 token):
    headers = {"Content-Type": content_type}
    if signature is not None:
        headers["X-Twilio-Signature"] = as_header(signature)
    if token is not None:
        headers["I-Twilio-Idempotency-Token"] = as_header(token)
    response = client.post(path, data=body, headers=headers)
    assert response.status_code < 500


@SLOW
@given(fields=st.lists(st.tuples(FIELD_NAMES, TEXT), max_size=15), event_type=EVENT_TYPES,
       path=st.sampled_from(PATHS), repeat_event_type=st.booleans())
def test_signed_random_forms_are_never_5xx(client, fields, event_type, path, repeat_event_type):
    """Past the signature check (so a valid signature), any form is a 2xx or a clear 4xx."""
    pairs = [("EventType", event_type)] + fields
    if repeat_event_type:
        pairs.append(("EventType", "onMessageAdded"))
    body = urlencode(pairs)
    from werkzeug.datastructures import MultiDict

    params = MultiDict(pairs)
    url = "http://localhost" + path
    response = client.post(path, data=body, headers={
        "Content-Type": "application/x-www-form-urlencoded",
        "X-Twilio-Signature": sign(params, url)})
    assert response.status_code < 500, response.get_data(as_text=True)


def test_server_is_healthy_after_the_barrage(client):
    for _ in range(3):
        client.post(PATHS[0], data=b"\x00" * 1000, headers={"Content-Type": "text/plain"})
    assert client.get("/healthz").status_code == 200
