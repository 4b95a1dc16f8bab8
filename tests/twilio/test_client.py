"""Client: which failures are worth trying again (network, timeouts, 429, 5xx) and which
not; a reply is a text or a Content template."""

import asyncio
import json
import logging
from types import SimpleNamespace

import aiohttp
import pytest
import requests
import urllib3
from twilio.base.exceptions import TwilioException, TwilioRestException
from twilio.http.response import Response

from app.twilio.async_client import AsyncConversationsClient, AsyncDryRunClient
from app.twilio.client import ConversationsClient, DryRunClient
from app.twilio.errors import ApiError, api_errors
from config import TwilioSettings, load_settings
from tests.support.servers import free_port
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN


def page_error(status: int) -> TwilioException:
    """What twilio-python raises when a page of a listing comes back non-200."""
    body = json.dumps({"code": 20500, "message": "fake", "status": status})
    return TwilioException("Unable to fetch page", Response(status, body))


@pytest.mark.parametrize("raised, transient", [
    (requests.ConnectionError("refused"), True),
    (requests.exceptions.ChunkedEncodingError("Connection broken: IncompleteRead"), True),
    (requests.ReadTimeout("slow"), True),
    (requests.ConnectTimeout("slow"), True),
    (TwilioRestException(429, "/v1/x", "rate"), True),
    (TwilioRestException(503, "/v1/x", "down"), True),
    (page_error(503), True),
    (page_error(429), True),
    (TwilioRestException(400, "/v1/x", "bad", code=21610), False),
    (page_error(404), False),
    (json.JSONDecodeError("Expecting value", "<html>", 0), True),
    (ValueError("not Twilio's JSON"), False),
    (TwilioException("Credentials are required"), False),
    (requests.exceptions.InvalidURL("no host"), False),
    (requests.TooManyRedirects("loop"), False),
], ids=lambda value: type(value).__name__ if isinstance(value, Exception) else str(value))
def test_failures_are_classified(raised, transient):
    """Each kind of failure becomes an ApiError that says whether a retry can help."""
    with pytest.raises(ApiError) as caught, api_errors():
        raise raised
    assert caught.value.transient is transient


@pytest.mark.parametrize("client", ["blocking", "async"])
def test_a_refused_connection_is_not_called_lost(client):
    """Nothing listens on the API's port: both clients say they could not connect, and
    why, in plain words (aiohttp's own text says "ssl:default" even for http://)."""
    port = free_port()
    settings = TwilioSettings(account_sid=ACCOUNT_SID, auth_token=AUTH_TOKEN,
                              api_base_url=f"http://127.0.0.1:{port}", http_timeout=5)

    async def send_async():
        api = AsyncConversationsClient(settings)
        try:
            await api.send_message("CH" + "a" * 32, author="bot", body="hi", attributes="{}")
        finally:
            await api.close()

    with pytest.raises(ApiError) as caught:
        if client == "async":
            asyncio.run(send_async())
        else:
            ConversationsClient(ACCOUNT_SID, AUTH_TOKEN, base_url=settings.api_base_url,
                                timeout=5).send_message("CH" + "a" * 32, author="bot",
                                                        body="hi", attributes="{}")
    assert caught.value.message == f"could not connect to 127.0.0.1:{port}: connection refused"
    assert caught.value.transient is True


def refused():
    """What requests raises when the connection could not be opened."""
    reason = urllib3.exceptions.NewConnectionError(
        None, "Failed to establish a new connection: [Errno 111] Connection refused")
    return requests.ConnectionError(urllib3.exceptions.MaxRetryError(None, "/v1/x", reason))


CONNECTION_KEY = SimpleNamespace(host="conversations.twilio.com", port=443, ssl=True)


@pytest.mark.parametrize("raised, unknown", [
    (requests.ReadTimeout("slow"), True),
    (requests.exceptions.ChunkedEncodingError("Connection broken"), True),
    (requests.ConnectionError(ConnectionResetError(104, "reset")), True),
    (requests.ConnectTimeout("slow"), False),
    (refused(), False),
    (TwilioRestException(500, "/v1/x", "error or timeout in the API"), True),
    (TwilioRestException(502, "/v1/x", "bad gateway"), True),
    (TwilioRestException(504, "/v1/x", "gateway timeout"), True),
    (page_error(504), True),
    (TwilioRestException(503, "/v1/x", "unavailable"), False),
    (TwilioRestException(429, "/v1/x", "rate"), False),
    (TwilioRestException(400, "/v1/x", "bad", code=21610), False),
    (TimeoutError(), True),
    (aiohttp.SocketTimeoutError("read"), True),
    (aiohttp.ServerDisconnectedError(), True),
    (aiohttp.ClientOSError(104, "Connection reset by peer"), True),
    (aiohttp.ClientPayloadError("Response payload is not completed"), True),
    (aiohttp.ConnectionTimeoutError("connect"), False),
    (aiohttp.ClientConnectorError(CONNECTION_KEY, ConnectionRefusedError(
        111, "Connection refused")), False),
], ids=lambda value: type(value).__name__ if isinstance(value, Exception) else "")
def test_outcomes_left_unknown(raised, unknown):
    """Unknown: the request may have reached Twilio and may still take effect (a
    timeout, a connection dropped once open, a 500, a gateway's 502 or 504). Known: a
    connection never opened, a 503 (unavailable), a 429, a 4xx."""
    with pytest.raises(ApiError) as caught, api_errors():
        raise raised
    assert caught.value.unknown is unknown


def test_status_and_code_of_a_page_error_are_kept():
    """A failed listing keeps the HTTP status and Twilio's code for the log."""
    with pytest.raises(ApiError) as caught, api_errors():
        raise page_error(503)
    assert (caught.value.status, caught.value.code) == (503, 20500)


# -- rich replies: a Content template instead of a text ---------------------------------

TEMPLATE = "HX" + "c" * 32
CONVERSATION = "CH" + "a" * 32


def live_client(fake_api) -> ConversationsClient:
    fake_api.add_conversation(CONVERSATION)
    return ConversationsClient(ACCOUNT_SID, AUTH_TOKEN, base_url=fake_api.url, timeout=5)


@pytest.mark.parametrize("variables", ['{"1": "Ada", "2": "9:00"}', None],
                         ids=["with-variables", "without-variables"])
def test_template_is_sent_as_content_sid_without_a_body(fake_api, variables):
    """With a ContentSid the request carries the template (and its variables), never Body."""
    live_client(fake_api).send_message(CONVERSATION, author="support-bot", body="ignored",
                                       attributes="{}", content_sid=TEMPLATE,
                                       content_variables=variables)
    [created] = fake_api.created
    assert "Body" not in created.form
    assert created.content_sid == TEMPLATE
    assert created.content_variables == (json.loads(variables) if variables else None)


def test_text_is_sent_as_body_without_content(fake_api):
    """Without a ContentSid the reply is its Body, as before."""
    live_client(fake_api).send_message(CONVERSATION, author="support-bot", body="Thanks!",
                                       attributes="{}")
    [created] = fake_api.created
    assert created.body == "Thanks!"
    assert "ContentSid" not in created.form and "ContentVariables" not in created.form


@pytest.mark.parametrize("variables", ['{"1": "Zoë & co", "2": "9:00 a+b=c"}', None],
                         ids=["template", "text"])
def test_both_clients_send_the_same_form(env, fake_api, variables):
    """The sender's client encodes the form itself (not through aiohttp's FormData): what
    Twilio receives is what the blocking client sends, for text that URL-encoding could
    get wrong (non-ASCII, &, =, +, new lines, emoji)."""
    body = "Grüße & thanks: 1+1=2\nsee https://example.com/?a=1&b=2 \U0001f44d"
    attributes = json.dumps({"inReplyTo": "IM" + "1" * 32, "note": "a&b=c+d"})
    kwargs = {"author": "support-bot", "body": body, "attributes": attributes,
              "content_sid": TEMPLATE if variables else None, "content_variables": variables}
    live_client(fake_api).send_message(CONVERSATION, **kwargs)

    async def send_async():
        client = AsyncConversationsClient(load_settings(env).twilio)
        try:
            await client.send_message(CONVERSATION, **kwargs)
        finally:
            await client.close()

    asyncio.run(send_async())
    blocking, sent_async = fake_api.created
    assert sent_async.form == blocking.form
    assert sent_async.form["Attributes"] == attributes
    if variables:
        assert sent_async.content_variables == json.loads(variables)
    else:
        assert sent_async.body == body


@pytest.mark.parametrize("path", [
    "/v1/Conversations/{missing}", "/v1/Conversations/{missing}/Messages",
    "/v1/Conversations/{missing}/Participants", "/v1/Conversations/{known}/Participants/MB1",
])
def test_fake_answers_404_for_what_does_not_exist(fake_api, path):
    """Like Twilio, the fake makes up no conversation or participant: 404, code 20404."""
    url = fake_api.url + path.format(missing="CH" + "9" * 32,
                                     known=fake_api.add_conversation())
    response = requests.get(url, auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5)
    assert (response.status_code, response.json()["code"]) == (404, 20404)
    assert requests.post(url.removesuffix("/MB1"), auth=(ACCOUNT_SID, AUTH_TOKEN), timeout=5,
                         data={"Author": "x", "Body": "hi", "Identity": "x"}).status_code \
        == (201 if "{known}" in path else 404)
    assert fake_api.created == []


def test_fake_refuses_body_with_content_variables(fake_api):
    """The fake answers like Twilio: Body and ContentVariables together are error 35127."""
    fake_api.add_conversation(CONVERSATION)
    response = requests.post(
        f"{fake_api.url}/v1/Conversations/{CONVERSATION}/Messages", auth=(ACCOUNT_SID, AUTH_TOKEN),
        data={"Body": "Hi", "ContentSid": TEMPLATE, "ContentVariables": "{}"}, timeout=5)
    assert (response.status_code, response.json()["code"]) == (400, 35127)
    assert fake_api.created == []


def test_dry_run_logs_the_template(caplog):
    """Dry-run mode says which template it would have sent, with its variables."""
    caplog.set_level(logging.INFO, logger="app.twilio.client")
    DryRunClient().send_message(CONVERSATION, author="support-bot", body=None, attributes="{}",
                                content_sid=TEMPLATE, content_variables='{"1": "Ada"}')
    assert f"template {TEMPLATE}" in caplog.text and '{"1": "Ada"}' in caplog.text


# -- SIDs in URLs: refused unless they have their kind's shape (issue 17, point 5) -------

STEERING = [
    "CH" + "a" * 32 + "/../../Services/IS" + "b" * 32 + "/Conversations/CH" + "c" * 32,
    "CH" + "a" * 32 + "?Order=desc", "CH" + "a" * 31, "IM" + "a" * 32, "CH" + "a" * 32 + "\n",
]


@pytest.mark.parametrize("sid", STEERING)
def test_client_refuses_a_conversation_sid_that_could_steer_its_url(fake_api, sid):
    """Defence in depth: whatever the outbox holds, no call goes to another path."""
    client = live_client(fake_api)
    calls = [
        lambda: client.send_message(sid, author="support-bot", body="Hi", attributes="{}"),
        lambda: client.recent_messages(sid),
        lambda: client.receipts(sid, "IM" + "b" * 32),
        lambda: client.receipts(CONVERSATION, ("CH" if sid[:2] == "IM" else "IM") + sid[2:]),
        lambda: DryRunClient().send_message(sid, author="support-bot", body="Hi",
                                            attributes="{}"),
    ]
    for call in calls:
        with pytest.raises(ApiError) as caught:
            call()
        assert caught.value.transient is False and "refused" in caught.value.message
    assert fake_api.calls == []


@pytest.mark.parametrize("sid", STEERING)
def test_async_client_refuses_a_conversation_sid_that_could_steer_its_url(env, fake_api, sid):
    async def calls():
        client = AsyncConversationsClient(load_settings(env).twilio)
        try:
            for call in (
                    client.send_message(sid, author="support-bot", body="Hi", attributes="{}"),
                    client.recent_messages(sid),
                    AsyncDryRunClient().send_message(sid, author="support-bot", body="Hi",
                                                     attributes="{}"),
                    AsyncDryRunClient().recent_messages(sid)):
                with pytest.raises(ApiError) as caught:
                    await call
                assert caught.value.transient is False
        finally:
            await client.close()

    asyncio.run(calls())
    assert fake_api.calls == []


def test_client_takes_upper_case_hex(fake_api):
    sid = fake_api.add_conversation("CH" + "ABCDEF0123456789" * 2)
    live_client(fake_api).send_message(sid, author="support-bot", body="Hi", attributes="{}")
    assert fake_api.calls == [("POST", f"/v1/Conversations/{sid}/Messages")]
