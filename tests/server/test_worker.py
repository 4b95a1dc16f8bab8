"""app/server/worker.py: when the request buffer holds a whole request, and what it
refuses before the app."""

import pytest

from app.server.worker import RequestBuffer

HEAD = b"POST /webhooks/conversations HTTP/1.1\r\nHost: x\r\n"


@pytest.mark.parametrize("pieces, expected", [
    ([HEAD + b"Content-Length: 3\r\n\r\na=1"], 0),
    ([HEAD + b"Content-Length: 3\r\n\r\na="], None),
    ([HEAD + b"Content-Length: 3\r", b"\n\r", b"\na", b"=", b"1"], 0),
    ([b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], 0),
    ([HEAD + b"Content-Length: 2000000\r\n\r\n"], 413),
    ([HEAD + b"X: " + b"y" * 70000], 431),
    ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\na=1\r\n0\r\n\r\n"], 0),
    ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\na=1\r\n0\r\n"], None),
    ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n3\r\na", b"=1\r\n", b"0\r\n", b"\r\n"], 0),
    ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n0\r\nTrailer: x\r\n\r\n"], 0),
    ([HEAD + b"Transfer-Encoding: chunked\r\n\r\n200000\r\n"], 413),
    ([HEAD + b"Transfer-Encoding: chunked\r\n\r\nzz\r\n"], 0),  # gunicorn answers 400
])
def test_request_buffer_knows_when_a_request_is_whole(pieces, expected):
    """Whole (0), more to come (None), or refused before the app (413, 431)."""
    buffer = RequestBuffer()
    results = [buffer.feed(piece) for piece in pieces]
    assert results[-1] == expected
    assert all(result is None for result in results[:-1])


def test_request_buffer_notes_expect_continue():
    buffer = RequestBuffer()
    assert buffer.feed(HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n") is None
    assert buffer.expects_continue
