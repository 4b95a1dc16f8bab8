"""app/server/worker.py: when the request buffer holds a whole request, what it refuses
before the app, and that whatever it lets through gunicorn's own parser reads (the
parser is run here on the same bytes)."""

from __future__ import annotations

import pytest
from gunicorn.config import Config
from gunicorn.http.body import ChunkedReader
from gunicorn.http.errors import ParseException
from gunicorn.http.parser import RequestParser
from gunicorn.http.unreader import IterUnreader
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from app.server.worker import Refused, RequestBuffer, chunk_size, read_timeout

HEAD = b"POST /webhooks/conversations HTTP/1.1\r\nHost: x\r\n"
CHUNKED = HEAD + b"Transfer-Encoding: chunked\r\n\r\n"
WHOLE, MORE = True, False

CASES = {
    "Content-Length": ([HEAD + b"Content-Length: 3\r\n\r\na=1"], WHOLE),
    "Content-Length, body to come": ([HEAD + b"Content-Length: 3\r\n\r\na="], MORE),
    "head split anywhere": ([HEAD + b"Content-Length: 3\r", b"\n\r", b"\na", b"=", b"1"],
                            WHOLE),
    "no body": ([b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], WHOLE),
    "an empty line first": ([b"\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"], WHOLE),
    "next request pipelined": ([HEAD + b"Content-Length: 1\r\n\r\naGET / HTTP/1.1\r\n"],
                               WHOLE),
    "chunked": ([CHUNKED + b"3\r\na=1\r\n0\r\n\r\n"], WHOLE),
    "chunked, CRLF to come": ([CHUNKED + b"3\r\na=1\r\n0\r\n"], MORE),
    "chunked, CR of the CRLF": ([CHUNKED + b"3\r\na=1\r\n0\r\n\r"], MORE),
    "chunked, split": ([CHUNKED + b"3\r\na", b"=1\r\n", b"0\r\n", b"\r\n"], WHOLE),
    "chunk size split": ([CHUNKED + b"0", b"0", b"3;a", b"=b\r", b"\na=1\r", b"\n0\r\n\r\n"],
                         WHOLE),
    "hex sizes, extensions": ([CHUNKED + b"00A;x=\"y z\"\r\n0123456789\r\n"
                               b"1 ; name\r\nb\r\n0;last=1\r\n\r\n"], WHOLE),
    "chunked then pipelined": ([CHUNKED + b"0\r\n\r\nGET / HTTP/1.1\r\n"], WHOLE),
    "TE name in any case": ([HEAD + b"transfer-ENCODING:  Chunked \r\n\r\n0\r\n\r\n"], WHOLE),
    "body over 1 MiB": ([HEAD + b"Content-Length: 2000000\r\n\r\n"], 413),
    "chunked over 1 MiB": ([CHUNKED + b"200000\r\n"], 413),
    "head over 64 KiB": ([HEAD + b"X: " + b"y" * 70000], 431),
    # what gunicorn's parser refuses, or would wait for until the read timeout
    "size 0x10": ([CHUNKED + b"0x10\r\n"], 400),
    "size 1_0": ([CHUNKED + b"1_0\r\n"], 400),
    "size after a space": ([CHUNKED + b" 3\r\n"], 400),
    "size before a space": ([CHUNKED + b"3 \r\n"], 400),
    "size zz": ([CHUNKED + b"zz\r\n"], 400),
    "no size": ([CHUNKED + b";x\r\n"], 400),
    "bad extension": ([CHUNKED + b"3;=\r\n"], 400),
    "size line ended by LF": ([CHUNKED + b"3\na=1\r\n0\r\n\r\n"], 400),
    "size line over the limit": ([CHUNKED + b"0" * 8191 + b"\r\n"], 400),
    "chunk data then no CRLF": ([CHUNKED + b"3\r\na=1X"], 400),
    "chunk data then CR and no LF": ([CHUNKED + b"3\r\na=1\r", b"X"], 400),
    "trailer fields": ([CHUNKED + b"0\r\nX-Trailer: x\r\n\r\n"], 400),
    "Transfer-Encoding: identity": ([HEAD + b"Transfer-Encoding: identity\r\n\r\n"], 400),
    "Transfer-Encoding: gzip": ([HEAD + b"Transfer-Encoding: gzip\r\n\r\n"], 400),
    "gzip, chunked": ([HEAD + b"Transfer-Encoding: gzip, chunked\r\n\r\n"], 400),
    "chunked, gzip": ([HEAD + b"Transfer-Encoding: chunked, gzip\r\n\r\n"], 400),
    "chunked twice": ([HEAD + b"Transfer-Encoding: chunked\r\n"
                       b"Transfer-Encoding: chunked\r\n\r\n"], 400),
    "chunked with Content-Length": ([HEAD + b"Transfer-Encoding: chunked\r\n"
                                     b"Content-Length: 3\r\n\r\n"], 400),
    "chunked in HTTP/1.0": ([CHUNKED.replace(b"HTTP/1.1", b"HTTP/1.0")], 400),
    "Content-Length twice": ([HEAD + b"Content-Length: 3\r\nContent-Length: 3\r\n\r\n"], 400),
    "Content-Length +3": ([HEAD + b"Content-Length: +3\r\n\r\n"], 400),
    "Content-Length empty": ([HEAD + b"Content-Length:\r\n\r\n"], 400),
    "bare LF head": ([b"GET /healthz HTTP/1.1\nHost: x\n\n"], 400),
    "bare LF, head unfinished": ([b"GET /healthz HTTP/1.1\nHo"], 400),
    "bare LF in one line": ([HEAD + b"X: y\nZ: w\r\n\r\n"], 400),
    "bare LF split from its line": ([HEAD + b"X: y", b"\n"], 400),
    "LF first": ([b"\nGET /healthz HTTP/1.1\r\n\r\n"], 400),
}


@pytest.mark.parametrize("pieces, expected", CASES.values(), ids=CASES.keys())
def test_request_buffer_knows_when_a_request_is_whole(pieces, expected):
    """Whole, more to come, or refused with a status before the app, at the last piece;
    the same when the bytes come one at a time."""
    assert outcome(pieces) == (expected, len(pieces) - 1)
    assert outcome([bytes([b]) for b in b"".join(pieces)])[0] == expected


def outcome(pieces: list[bytes]) -> tuple[bool | int, int]:
    """What feeding `pieces` ends with: True (whole), False (more to come) or the
    status of a refusal; and at which piece (nothing after it is read)."""
    buffer = RequestBuffer()
    for i, piece in enumerate(pieces):
        try:
            if buffer.feed(piece):
                return True, i
        except Refused as refused:
            return refused.status, i
    return False, len(pieces) - 1


def test_request_buffer_notes_expect_continue():
    buffer = RequestBuffer()
    assert buffer.feed(HEAD + b"Expect: 100-continue\r\nContent-Length: 5\r\n\r\n") is MORE
    assert buffer.expects_continue


def gunicorn_body(request: bytes) -> bytes:
    """The body gunicorn's parser reads from `request` (raises what it raises)."""
    parser = RequestParser(Config(), iter([request]), ("127.0.0.1", 5000))
    return next(parser).body.read()


@pytest.mark.parametrize("pieces, expected", [case for case in CASES.values()
                                              if case[1] is WHOLE],
                         ids=[name for name, case in CASES.items() if case[1] is WHOLE])
def test_gunicorn_reads_every_request_the_buffer_lets_through(pieces, expected):
    gunicorn_body(b"".join(pieces))


STRICTER = {"trailer fields", "gzip, chunked", "size line over the limit"}


@pytest.mark.parametrize("pieces", [case[0] for name, case in CASES.items()
                                    if case[1] == 400 and name not in STRICTER],
                         ids=[name for name, case in CASES.items()
                              if case[1] == 400 and name not in STRICTER])
def test_gunicorn_refuses_what_the_buffer_refuses(pieces):
    """The buffer refuses nothing that gunicorn would serve, but for STRICTER."""
    with pytest.raises(ParseException):
        gunicorn_body(b"".join(pieces))


LINE_BYTES = [b"0", b"3", b"a", b"F", b"x", b"_", b"+", b"-", b" ", b"\t", b";", b"=",
              b'"', b"\\", b"\r", b"\n", b"n", b",", b"\x80", b"\x00"]


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(LINE_BYTES), max_size=12).map(b"".join)
       .filter(lambda line: b"\r\n" not in line))
@example(b"0x10")
@example(b"1_0")
@example(b" 3")
@example(b"3 ;x")
@example(b'3;x="a\\"b"')
def test_chunk_size_line_is_read_as_gunicorn_reads_it(line):
    """Accepted with the same size as gunicorn's ChunkedReader, or refused when it
    refuses: the buffer is exactly as strict on chunk-size lines."""
    unreader = IterUnreader([])
    try:
        theirs = ChunkedReader(None, unreader).parse_chunk_size(unreader, line + b"\r\n\r\n")[0]
    except ParseException:
        theirs = None
    try:
        ours = chunk_size(line)
    except Refused as refused:
        assert refused.status == 400
        ours = None
    assert ours == theirs


SIZE_FORMATS = [b"%x", b"%X", b"%03x", b"%x;ext", b'%x ; q="v"', b"0x%x", b" %x", b"%x_",
                b"%x;"]
ENDINGS = [b"\r\n", b"\r\n", b"\r\n", b"\n", b"\r", b"XY", b""]
LAST_CHUNKS = [b"0\r\n\r\n", b"000;end\r\n\r\n", b"0\r\n", b"0\r\n\n", b"0\r\nX\r\n\r\n"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(chunks=st.lists(st.tuples(st.binary(max_size=20), st.sampled_from(SIZE_FORMATS),
                                 st.sampled_from(ENDINGS)), max_size=4),
       last=st.sampled_from(LAST_CHUNKS), cut=st.integers(min_value=1, max_value=7))
def test_buffer_and_gunicorn_agree_on_chunked_bodies(chunks, last, cut):
    """Any chunked body, fed in pieces: the buffer holds it whole exactly when gunicorn
    reads it to its end, and gunicorn then reads the data that was sent. (Trailer
    fields, where the buffer is stricter, are left out: a line without ":" is one
    that both refuse.)"""
    body = b"".join(fmt % len(data) + b"\r\n" + data + ending
                    for data, fmt, ending in chunks) + last
    request = CHUNKED + body
    result = outcome([request[i:i + cut] for i in range(0, len(request), cut)])[0]
    try:
        read = gunicorn_body(request)
    except (ParseException, OSError):
        read = None
    sent = b""
    for data, _, _ in chunks:
        if not data:
            break  # a chunk of size 0 is the last one
        sent += data
    assert (result is True) == (read == sent), (result, read)
    assert result in (True, False, 400)


@pytest.mark.parametrize("raw, seconds", [(None, 10.0), ("3", 3.0), ("0.5", 0.5)])
def test_read_timeout(raw, seconds):
    assert read_timeout({} if raw is None else {"REQUEST_READ_TIMEOUT": raw}) == seconds


@pytest.mark.parametrize("raw", ["", "ten", "0", "-1", "nan", "inf"])
def test_read_timeout_refuses_what_is_not_a_duration(raw):
    with pytest.raises(ValueError, match="REQUEST_READ_TIMEOUT"):
        read_timeout({"REQUEST_READ_TIMEOUT": raw})


def test_the_benchmark_loads_the_worker_without_the_app():
    """bench/gunicorn.conf.py loads this module from its file for other apps: it must
    import nothing of the app (which would load the whole app into their workers)."""
    import subprocess
    import sys

    from tests.support.servers import ROOT

    check = ("import runpy, sys; conf = runpy.run_path('bench/gunicorn.conf.py'); "
             "assert conf['worker_class'].__name__ == 'BufferingThreadWorker'; "
             "assert not {'on_starting', 'post_worker_init', 'worker_exit'} & set(conf); "
             "assert not [m for m in sys.modules if m == 'app' or m.startswith('app.')], "
             "sorted(m for m in sys.modules if m.startswith('app'))")
    result = subprocess.run([sys.executable, "-c", check], cwd=ROOT, capture_output=True,
                            text=True, timeout=60)
    assert result.returncode == 0, result.stderr
