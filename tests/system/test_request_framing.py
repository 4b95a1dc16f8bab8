"""Requests whose framing gunicorn's parser refuses, sent over a raw socket to a real
gunicorn: each is answered 4xx at once (never 408 after REQUEST_READ_TIMEOUT, never a
500), with one WARNING line and no traceback; well-framed chunked webhooks still pass.

Before app/server/worker.py checked chunk sizes as gunicorn does, a chunk size such as
`0x10` passed the worker's buffer, gunicorn refused it only while the app read the body,
and the app answered 500 with an ERROR traceback; `Transfer-Encoding: identity` and
bare-LF heads waited for REQUEST_READ_TIMEOUT and got 408.
"""

from __future__ import annotations

import socket
from urllib.parse import urlencode

import pytest

from tests.support.fake_conversations import FakeConversationsAPI
from tests.support.servers import gunicorn
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

POST = (b"POST /webhooks/conversations HTTP/1.1\r\nHost: localhost\r\n"
        b"Content-Type: application/x-www-form-urlencoded\r\n")
CHUNKED = POST + b"Transfer-Encoding: chunked\r\n\r\n"
REFUSED = "Invalid request from ip="

CASES = {
    # chunk-size lines gunicorn refuses (InvalidChunkSize, InvalidChunkExtension)
    "size 0x10": CHUNKED + b"0x10\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
    "size 1_0": CHUNKED + b"1_0\r\n" + b"a" * 16 + b"\r\n0\r\n\r\n",
    "size with a leading space": CHUNKED + b" 3\r\na=1\r\n0\r\n\r\n",
    "size with a trailing space": CHUNKED + b"3 \r\na=1\r\n0\r\n\r\n",
    "size +3": CHUNKED + b"+3\r\na=1\r\n0\r\n\r\n",
    "empty size": CHUNKED + b"\r\na=1\r\n0\r\n\r\n",
    "bad chunk extension": CHUNKED + b"3;=x\r\na=1\r\n0\r\n\r\n",
    "size line ended by a bare LF": CHUNKED + b"3\na=1\r\n0\r\n\r\n",
    # ChunkMissingTerminator, and trailers (gunicorn forbids Host in them)
    "no CRLF after the chunk data": CHUNKED + b"3\r\na=1XX0\r\n\r\n",
    "trailer fields": CHUNKED + b"3\r\na=1\r\n0\r\nHost: evil\r\n\r\n",
    # transfer codings other than one `chunked`: these waited for the read timeout
    "Transfer-Encoding: identity": POST + b"Transfer-Encoding: identity\r\n\r\na=1",
    "identity with Content-Length": POST + b"Transfer-Encoding: identity\r\n"
                                           b"Content-Length: 3\r\n\r\na=1",
    "Transfer-Encoding: gzip": POST + b"Transfer-Encoding: gzip\r\n\r\na=1",
    "chunked not last": POST + b"Transfer-Encoding: chunked, gzip\r\n\r\n"
                                b"3\r\na=1\r\n0\r\n\r\n",
    "chunked twice": POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"
                            b"\r\n3\r\na=1\r\n0\r\n\r\n",
    "chunked in HTTP/1.0": CHUNKED.replace(b"HTTP/1.1", b"HTTP/1.0") + b"0\r\n\r\n",
    # lines ended by LF alone: the head never ended, so these waited too
    "bare LF POST": b"POST /webhooks/conversations HTTP/1.1\nHost: localhost\n"
                    b"Content-Length: 3\n\na=1",
    "bare LF GET": b"GET /healthz HTTP/1.1\nHost: localhost\n\n",
    "one header line ended by LF": b"GET /healthz HTTP/1.1\r\nHost: localhost\n"
                                   b"Accept: */*\r\n\r\n",
    # framing gunicorn refuses from the head alone
    "Content-Length twice": POST + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\na=1",
    "conflicting Content-Length": POST + b"Content-Length: 4\r\nContent-Length: 3\r\n\r\na=1",
    "Content-Length with chunked": POST + b"Content-Length: 3\r\n"
                                          b"Transfer-Encoding: chunked\r\n\r\n3\r\na=1\r\n0\r\n\r\n",
    "Content-Length +3": POST + b"Content-Length: +3\r\n\r\na=1",
    "obs-fold": POST + b"X-Folded: a\r\n b\r\nContent-Length: 3\r\n\r\na=1",
    "space in a header name": POST + b"X Bad: a\r\nContent-Length: 3\r\n\r\na=1",
    "header line without a colon": POST + b"Nocolon\r\nContent-Length: 3\r\n\r\na=1",
    "control character in the target": b"GET /healthz\x7f HTTP/1.1\r\nHost: localhost\r\n\r\n",
}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("framing")
    api = FakeConversationsAPI(ACCOUNT_SID, AUTH_TOKEN, any_conversation=True).start()
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": api.url, "INSTANCE_DIR": tmp / "instance"}
    try:
        with gunicorn(env, tmp / "server.log", workers=1) as running:
            yield running
    finally:
        api.stop()


def exchange(server, request: bytes) -> tuple[bytes, str]:
    """Send `request` on a new connection; return every byte the server sent until it
    closed (or 20 s passed), and the log lines written meanwhile."""
    before = len(server.log)
    port = int(server.url.rsplit(":", 1)[1])
    received = b""
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        try:
            while data := sock.recv(65536):
                received += data
        except (TimeoutError, ConnectionResetError):
            pass
    return received, server.log[before:]


@pytest.mark.parametrize("request_bytes", CASES.values(), ids=CASES.keys())
def test_misframed_request_is_refused_at_once_with_one_warning(server, request_bytes):
    """One 4xx answer, neither 408 nor 5xx; one WARNING line naming the client, no
    traceback, no ERROR; the app never sees the request."""
    received, log = exchange(server, request_bytes)
    status = received.split(b"\r\n", 1)[0].decode(errors="replace")
    assert received.count(b"HTTP/1.1 ") == 1, received
    assert status.startswith("HTTP/1.1 4") and " 408 " not in status, (status, log)
    assert log.count(REFUSED) == 1, log
    assert "Traceback" not in log and "ERROR" not in log, log
    assert "app.web" not in log, log


def test_well_framed_chunked_webhook_is_answered(server):
    """A signed webhook sent chunked (upper-case hex, leading zeros, extensions, three
    chunks) reaches the app and is answered 200, with no warning."""
    params = message_added(body="chunked hello")
    url = "http://localhost/webhooks/conversations"
    body = urlencode(params).encode()
    thirds = [body[:10], body[10:40], body[40:]]
    chunks = b"".join(b"%X;name=value;q=\"a b\"\r\n" % len(part) + part + b"\r\n"
                      if i == 1 else b"%04x\r\n" % len(part) + part + b"\r\n"
                      for i, part in enumerate(thirds))
    request = (b"POST /webhooks/conversations HTTP/1.1\r\nHost: localhost\r\n"
               b"Content-Type: application/x-www-form-urlencoded\r\nConnection: close\r\n"
               b"X-Twilio-Signature: " + sign(params, url).encode() + b"\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n" + chunks + b"0;last\r\n\r\n")
    received, log = exchange(server, request)
    assert received.startswith(b"HTTP/1.1 200 "), (received, log)
    assert REFUSED not in log and "Traceback" not in log, log
