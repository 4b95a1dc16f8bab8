"""The body: read once up to WEBHOOK_MAX_BYTES (chunked or not), parsed strictly as a form."""

from urllib.parse import parse_qsl, urlencode

import pytest
import requests
import werkzeug.urls  # noqa: F401  (registers the lenient "werkzeug.url_quote" error handler)
from werkzeug.datastructures import MultiDict

from app.errors import BadRequest
from app.web import form
from tests.support.sending import run_until_idle
from tests.support.servers import gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

PATH = "/webhooks/conversations"
URL = "http://localhost" + PATH
FORM = "application/x-www-form-urlencoded"


def leniently_parsed(body: bytes) -> MultiDict:
    """The form as a lenient parser (werkzeug's) reads it: bad escapes kept as text."""
    return MultiDict(parse_qsl(body.decode(), keep_blank_values=True,
                               errors="werkzeug.url_quote"))


@pytest.mark.parametrize("bad, reason", [
    ("Body=hello%ZZworld", "percent"),
    ("Body=100%", "percent"),
    ("Body=%4", "percent"),
    ("Body=caf%E9", "UTF-8"),  # latin-1's e-acute: not UTF-8 once percent-decoded
    ("Body=%C3", "UTF-8"),  # a UTF-8 sequence cut short
])
def test_signed_body_that_is_not_form_encoding_is_400_and_unanswered(
        client, sender, fake_api, bad, reason):
    """Signed or not, a body that is not strict form encoding is 400, says why, gets no reply."""
    params = message_added()
    del params["Body"]
    body = (urlencode(params) + "&" + bad).encode()
    response = client.post(PATH, data=body, headers={
        "Content-Type": FORM, "X-Twilio-Signature": sign(leniently_parsed(body), URL)})
    assert response.status_code == 400, response.data
    assert reason in response.get_data(as_text=True)
    assert run_until_idle(sender) == 0
    assert fake_api.created == []


@pytest.mark.parametrize("body, expected", [
    (b"", []),
    (b"a=1&a=2&b=", [("a", "1"), ("a", "2"), ("b", "")]),
    (b"flag&x=%3D%26", [("flag", ""), ("x", "=&")]),
    (b"Body=caf%C3%A9+au+lait", [("Body", "café au lait")]),
    ("Body=café".encode(), [("Body", "café")]),
    (b"Body=50%25", [("Body", "50%")]),
])
def test_parse_reads_form_encoding(body, expected):
    """Valid form encoding parses to every pair, in order, repeated keys and blanks kept."""
    assert list(form.parse(body).items(multi=True)) == expected


@pytest.mark.parametrize("body", [
    b"%", b"a=%G0", b"a=%0", b"%ZZ=1", b"a=\xff", b"a=%FF", b"a=%C3%28", b"a=%ED%A0%80",
])
def test_parse_refuses_what_is_not_form_encoding(body):
    """Bad escapes and bytes that are not UTF-8 (raw or percent-encoded) raise BadRequest."""
    with pytest.raises(BadRequest, match="form"):
        form.parse(body)


@pytest.fixture
def small_server(tmp_path, fake_api):
    """A real gunicorn whose body limit is 2 KiB, so that a big body is cheap to send."""
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
           "WEBHOOK_MAX_BYTES": 2048}
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        yield server


def signed_body_of(size: int, url: str, conversation_sid: str | None = None
                   ) -> tuple[bytes, str]:
    """A real onMessageAdded form of exactly `size` bytes, and its signature for `url`."""
    params = message_added(body="", conversation_sid=conversation_sid)
    params["Body"] = "x" * (size - len(urlencode(params).encode()))
    body = urlencode(params).encode()
    assert len(body) == size
    return body, sign(params, url)


def chunks(body: bytes, size: int = 500):
    """Yield the body in pieces: requests sends a generator as Transfer-Encoding: chunked."""
    for start in range(0, len(body), size):
        yield body[start:start + size]


def test_chunked_body_over_the_limit_is_413_on_a_real_server(small_server):
    """A chunked body one byte over the limit is 413 (not cut, then blamed on the token)."""
    url = small_server.url + PATH
    body, signature = signed_body_of(2049, url)
    headers = {"Content-Type": FORM, "X-Twilio-Signature": signature}
    chunked = requests.post(url, data=chunks(body), headers=headers, timeout=10)
    sized = requests.post(url, data=body, headers=headers, timeout=10)
    assert (chunked.status_code, sized.status_code) == (413, 413), chunked.text
    assert "Auth Token" not in small_server.log


def test_chunked_body_up_to_the_limit_is_accepted_on_a_real_server(small_server, fake_api):
    """A signed chunked body of exactly the limit is read whole, accepted and answered."""
    url = small_server.url + PATH
    body, signature = signed_body_of(2048, url, fake_api.add_conversation())
    response = requests.post(url, data=chunks(body), timeout=10, headers={
        "Content-Type": FORM, "X-Twilio-Signature": signature})
    assert response.status_code == 200, response.text
    assert response.headers["X-Webhook-Outcome"].startswith("reply queued")
    wait_for(lambda: len(fake_api.created) == 1)
