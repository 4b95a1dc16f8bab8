"""gunicorn's gthread worker, with each request read whole before a thread serves it.

Stock gthread gives a thread to a connection as soon as its first byte arrives; a client
sending its body at 1 byte/s then holds that thread for as long as it likes, and 8 such
clients (2 workers x 4 threads) stopped every webhook. `BufferingThreadWorker` reads a
request whole in the worker's event loop, the way nginx buffers requests, and only then
gives it a thread: a slow client costs a file descriptor and its bytes, never a thread.
Measured numbers are in the README ("Which set-ups are safe to expose").

`RequestBuffer` tells from the request's framing (Content-Length, or chunked) when it is
whole. It refuses what gunicorn's parser would refuse later (gunicorn/http/message.py
`set_body_reader`, gunicorn/http/body.py `ChunkedReader`), by the same rules or
stricter ones, so that whatever it lets through gunicorn parses: gunicorn reads a
chunked body only when the app reads it, and a refusal there was an exception inside
the app, answered 500 with a traceback.

    400  a line of the head ended by LF alone (the head would never end); a
         Transfer-Encoding other than one `chunked` (identity, gzip, chunked not last
         or twice), or with Content-Length, or outside HTTP/1.1; Content-Length twice or
         not digits; a chunk-size line other than hex digits and optional extensions;
         chunk data not followed by CRLF; trailer fields (gunicorn checks them by rules
         of its own, and no client of a webhook server sends them)
    413  a body over MAX_BODY (the app's own limit, WEBHOOK_MAX_BYTES, is lower)
    431  a head over MAX_HEAD
    408  not whole within REQUEST_READ_TIMEOUT seconds (environment, default 10)

Each refusal logs one WARNING line, "Invalid request from ip=...", as gunicorn's own do
(a 408 only at debug level: slow clients would flood the log); then the connection is
closed. TLS and HTTP/2 connections are served as gthread serves them.

And the app is told when each request arrived whole (`X-Bot-Arrived`): the time it then
waits for a free thread counts against its deadline for the database (app/web/arrival.py).

This module imports only gunicorn and the standard library (see app/server/__init__.py).
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import time
from collections import deque
from collections.abc import Mapping
from functools import partial

from gunicorn.http.body import CHUNK_EXT_RE
from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import ThreadWorker

MAX_HEAD = 64 * 1024  # request line and headers (gunicorn's own limits are lower)
MAX_BODY = 1024 * 1024
CHUNK_LINE_LIMIT = 8190  # gunicorn's, when limit_request_field_size does not set one
REASONS = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
           431: "Request Header Fields Too Large"}
_HEX = frozenset(b"0123456789abcdefABCDEF")
# The fields that frame a request; a name is a whole line's start up to its ":" (with a
# blank before the ":" it is no name to gunicorn, which refuses the head).
_FRAMING_FIELDS = re.compile(rb"\r\n(content-length|transfer-encoding|expect):([^\r\n]*)",
                             re.IGNORECASE)

ARRIVED = "X-BOT-ARRIVED"  # gunicorn's header names are upper case


class Refused(Exception):
    """A request refused before the app: answer `status`; `reason` is for the log."""

    def __init__(self, status: int, reason: str):
        super().__init__(f"{status} {reason}")
        self.status, self.reason = status, reason


def chunk_size(line: bytes) -> int:
    """The size a chunk-size line (without its CRLF) gives, by gunicorn's rule
    (`ChunkedReader.parse_chunk_size`): hex digits, then optional extensions, blanks
    only before a ";". Raise Refused (400) for anything else."""
    size, semicolon, extensions = line.partition(b";")
    if semicolon:
        size = size.rstrip(b" \t")
    if not size or not _HEX.issuperset(size):
        raise Refused(400, "invalid chunk size")
    if semicolon and not CHUNK_EXT_RE.fullmatch(semicolon + extensions):
        raise Refused(400, "invalid chunk extension")
    return int(size, 16)


class RequestBuffer:
    """One request's bytes as they arrive, and whether they make a whole request yet.

    Each call looks only at what is new (the end of the head, the next chunk), so a
    client sending a byte at a time costs no more than one sending it all at once.
    """

    def __init__(self, chunk_line_limit: int = CHUNK_LINE_LIMIT):
        self.data = bytearray()
        self.body_at = -1  # where the body starts, once the head is whole
        self.body_size = 0  # Content-Length
        self.chunk_at = -1  # chunked: where the next chunk's size line starts
        self.searched = 0  # chunked: how far that line is known to hold no CRLF
        self.chunk_line_limit = chunk_line_limit
        self.expects_continue = False

    def feed(self, data: bytes) -> bool:
        """Add `data`; return whether the request is whole now, or raise Refused (then
        nothing more is to be read)."""
        new = len(self.data)
        self.data += data
        if self.body_at < 0:
            end = self.data.find(b"\r\n\r\n", max(0, new - 3))
            self._check_line_ends(new, len(self.data) if end < 0 else end + 4)
            if end < 0:
                if len(self.data) > MAX_HEAD:
                    raise Refused(431, "head over 64 KiB")
                return False
            self.body_at = end + 4
            self._read_framing(bytes(self.data[:end]))
        if self.chunk_at < 0:
            return len(self.data) - self.body_at >= self.body_size
        return self._chunks()

    def _check_line_ends(self, start: int, stop: int) -> None:
        """Every line of the head ends with CRLF (RFC 9112 2.2); gunicorn refuses an LF
        alone, but only once the head has ended, which it then never does."""
        data = self.data
        if data.count(b"\n", start, stop) != data.count(b"\r\n", max(0, start - 1), stop):
            raise Refused(400, "a line of the head ended by LF alone")

    def _read_framing(self, head: bytes) -> None:
        """Content-Length or chunked, from the head (without its last CRLF)."""
        if head.startswith(b"\r\n"):
            head = head[2:]  # one empty line may come before the request line (RFC 9112 2.2)
        version = head.partition(b"\r\n")[0].rpartition(b" ")[2]
        lengths, codings = [], []
        for name, value in _FRAMING_FIELDS.findall(head):
            name, value = name.lower(), value.strip(b" \t")
            if name == b"content-length":
                lengths.append(value)
            elif name == b"transfer-encoding":
                codings += [coding.strip(b" \t").lower() for coding in value.split(b",")]
            else:
                self.expects_continue = value.lower() == b"100-continue"
        if codings:
            if codings != [b"chunked"]:
                raise Refused(400, "Transfer-Encoding other than chunked")
            if lengths:
                raise Refused(400, "Transfer-Encoding with Content-Length")
            if version != b"HTTP/1.1":
                raise Refused(400, "Transfer-Encoding outside HTTP/1.1")
            self.chunk_at = self.searched = self.body_at
        elif lengths:
            if len(lengths) > 1:
                raise Refused(400, "Content-Length twice")
            if not lengths[0].isdigit():
                raise Refused(400, "Content-Length not a number")
            self.body_size = int(lengths[0])
            if self.body_size > MAX_BODY:
                raise Refused(413, "body over 1 MiB")

    def _chunks(self) -> bool:
        """Walk the chunks (size line, data, CRLF) to the last one and the CRLF after it."""
        data = self.data
        while True:
            limit = self.chunk_at + self.chunk_line_limit + 2
            line_end = data.find(b"\r\n", self.searched, limit)
            if line_end < 0:
                if len(data) >= limit:
                    raise Refused(400, "chunk-size line too long")
                self.searched = max(self.chunk_at, len(data) - 1)
                return False
            size = chunk_size(bytes(data[self.chunk_at:line_end]))
            end = line_end + 2 + size + 2 if size else line_end + 4
            if end - self.body_at > MAX_BODY:
                raise Refused(413, "body over 1 MiB")
            crlf = bytes(data[end - 2:end])
            if crlf != b"\r\n"[:len(crlf)]:
                raise Refused(400, "chunk data not followed by CRLF" if size
                              else "trailer fields after the last chunk")
            if len(crlf) < 2:
                return False
            if not size:
                return True
            self.chunk_at = self.searched = end


def read_timeout(env: Mapping[str, str]) -> float:
    """REQUEST_READ_TIMEOUT in seconds (default 10), from the process environment."""
    raw = env.get("REQUEST_READ_TIMEOUT", "10")
    try:
        seconds = float(raw)
    except ValueError:
        seconds = 0.0
    if not 0 < seconds < float("inf"):
        raise ValueError(f"REQUEST_READ_TIMEOUT must be a number of seconds, got {raw!r}")
    return seconds


class BufferingThreadWorker(ThreadWorker):
    """gthread whose event loop reads each request whole before a thread serves it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading = deque()  # connections still sending, oldest (first deadline) first
        self.read_timeout = read_timeout(os.environ)
        self.chunk_line_limit = (self.cfg.limit_request_field_size
                                 if self.cfg.limit_request_field_size > 0
                                 else CHUNK_LINE_LIMIT)

    def enqueue_req(self, conn):
        """Buffer the request in the event loop; hand it to a thread once whole."""
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, conn.client):
            return super().enqueue_req(conn)  # TLS or HTTP/2 in gunicorn: as gthread does
        conn.request = RequestBuffer(self.chunk_line_limit)
        conn.continued = False
        conn.deadline = time.monotonic() + self.read_timeout
        self.reading.append(conn)
        conn.sock.setblocking(False)
        self.poller.register(conn.sock, selectors.EVENT_READ, partial(self.on_bytes, conn))
        if conn.initialized:  # a kept-alive connection may hold its next request already
            self.check(conn, conn.parser.unreader.take_buffered())

    def on_bytes(self, conn, _sock):
        try:
            data = conn.sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:  # the client went away
            return self.drop(conn)
        self.check(conn, data)

    def check(self, conn, data):
        try:
            whole = conn.request.feed(data)
        except Refused as refused:
            return self.drop(conn, refused)
        if not whole:
            if not conn.continued and conn.request.expects_continue:
                conn.continued = True  # e.g. curl waits for it before sending a body
                _send_quietly(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        self.poller.unregister(conn.sock)
        self.reading.remove(conn)
        conn.data_ready = True
        conn.arrived = time.monotonic()
        super().enqueue_req(conn)

    def handle(self, conn):
        """In the thread: give the parser what the event loop read, then serve as usual."""
        request = conn.__dict__.pop("request", None)
        if request is not None and request.data:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(request.data))
        return super().handle(conn)

    def handle_request(self, req, conn):
        """Tell the app when the request arrived whole (ARRIVED), before it waited for a
        thread: its deadline for the database starts then (app/web/arrival.py). A
        client's own header of that name is dropped."""
        arrived = conn.__dict__.pop("arrived", None)
        req.headers = [header for header in req.headers if header[0] != ARRIVED]
        if arrived is not None:
            req.headers.append((ARRIVED, repr(arrived)))
        return super().handle_request(req, conn)

    def murder_pending(self):
        """Also answer 408 to requests that did not arrive whole in time, and close them."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading and self.reading[0].deadline <= now:
            self.drop(self.reading[0], Refused(408, "not whole within REQUEST_READ_TIMEOUT"))

    def drop(self, conn, refused: Refused | None = None):
        """Stop reading `conn`, answer `refused` if given (logged first), and close it."""
        self.poller.unregister(conn.sock)
        self.reading.remove(conn)
        if refused:
            ip = conn.client[0] if isinstance(conn.client, tuple) else conn.client
            log = self.log.debug if refused.status == 408 else self.log.warning
            log("Invalid request from ip=%s: %s, answered %s before the app", ip,
                refused.reason, refused.status)
            _send_quietly(conn.sock, f"HTTP/1.1 {refused.status} {REASONS[refused.status]}"
                                     "\r\nConnection: close\r\nContent-Length: 0\r\n\r\n"
                                     .encode())
        self.nr_conns -= 1
        conn.close()


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Best effort, never blocking: the client may be gone or not reading."""
    try:
        sock.send(data)
    except OSError:
        pass
