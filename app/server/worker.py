"""gunicorn's gthread worker, with each request read whole before a thread serves it.

Stock gthread gives a thread to a connection as soon as its first byte arrives; a client
sending its body at 1 byte/s then holds that thread for as long as it likes, and 8 such
clients (2 workers x 4 threads) stopped every webhook. `BufferingThreadWorker` reads a
request whole in the worker's event loop, the way nginx buffers requests, and only then
gives it a thread: a slow client costs a file descriptor and its bytes, never a thread,
and a request that has not arrived whole within REQUEST_READ_TIMEOUT seconds
(environment, default 10) is answered 408 and closed. Measured numbers are in the
README ("Which set-ups are safe to expose").

This module imports only gunicorn and the standard library (see app/server/__init__.py).
"""

from __future__ import annotations

import os
import re
import selectors
import socket
import time
from collections import deque
from functools import partial

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import ThreadWorker

MAX_HEAD = 64 * 1024  # request line and headers (gunicorn's own limits are lower)
MAX_BODY = 1024 * 1024  # larger bodies are refused here (413); the app's limit is lower
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.I)
_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue", re.I)


class RequestBuffer:
    """One request's bytes as they arrive, and whether they make a whole request yet.

    Each call looks only at what is new (the end of the head, the next chunk), so a
    client sending a byte at a time costs no more than one sending it all at once.
    """

    def __init__(self):
        self.data = bytearray()
        self.body_at = -1  # where the body starts, once the head is whole
        self.body_size = 0  # Content-Length
        self.chunk_at = -1  # chunked: where the next chunk's size line starts
        self.expects_continue = False

    def feed(self, data: bytes) -> int | None:
        """Add `data`; return None while more is to come, 0 once the request is whole,
        or the status to refuse it with (400, 413, 431) without reading more."""
        start = max(0, len(self.data) - 3)
        self.data += data
        if self.body_at < 0:
            end = self.data.find(b"\r\n\r\n", start)
            if end < 0:
                return 431 if len(self.data) > MAX_HEAD else None
            self.body_at = end + 4
            head = bytes(self.data[:end + 2])
            self.expects_continue = bool(_CONTINUE.search(head))
            if _CHUNKED.search(head):
                self.chunk_at = self.body_at
            elif length := _CONTENT_LENGTH.search(head):
                self.body_size = int(length.group(1))
                if self.body_size > MAX_BODY:
                    return 413
        if self.chunk_at < 0:
            return 0 if len(self.data) - self.body_at >= self.body_size else None
        return self._chunks()

    def _chunks(self) -> int | None:
        """Walk the chunks (size line, data, CRLF) to the last one and its trailers."""
        data = self.data
        while True:
            line_end = data.find(b"\r\n", self.chunk_at, self.chunk_at + 32)
            if line_end < 0:
                return 400 if len(data) - self.chunk_at >= 32 else None
            try:
                size = int(bytes(data[self.chunk_at:line_end]).split(b";")[0], 16)
            except ValueError:
                size = -1
            if size < 0:
                return 0  # not chunked encoding: gunicorn's parser answers 400
            if size == 0:  # the last chunk: then trailers, if any, and an empty line
                return 0 if data.endswith(b"\r\n\r\n", line_end) else None
            next_at = line_end + 2 + size + 2
            if next_at - self.body_at > MAX_BODY:
                return 413
            if next_at > len(data):
                return None
            self.chunk_at = next_at


class BufferingThreadWorker(ThreadWorker):
    """gthread whose event loop reads each request whole before a thread serves it."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.reading = deque()  # connections still sending, oldest (first deadline) first
        self.read_timeout = float(os.environ.get("REQUEST_READ_TIMEOUT", "10"))

    def enqueue_req(self, conn):
        """Buffer the request in the event loop; hand it to a thread once whole."""
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, conn.client):
            return super().enqueue_req(conn)  # TLS or HTTP/2 in gunicorn: as gthread does
        conn.request = RequestBuffer()
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
        status = conn.request.feed(data)
        if status is None:
            if not conn.continued and conn.request.expects_continue:
                conn.continued = True  # e.g. curl waits for it before sending a body
                _send_quietly(conn.sock, b"HTTP/1.1 100 Continue\r\n\r\n")
            return
        if status:
            return self.drop(conn, status)
        self.poller.unregister(conn.sock)
        self.reading.remove(conn)
        conn.data_ready = True
        super().enqueue_req(conn)

    def handle(self, conn):
        """In the thread: give the parser what the event loop read, then serve as usual."""
        request = conn.__dict__.pop("request", None)
        if request is not None and request.data:
            conn.sock.setblocking(True)
            conn.init()
            conn.parser.unreader.unread(bytes(request.data))
        return super().handle(conn)

    def murder_pending(self):
        """Also answer 408 to requests that did not arrive whole in time, and close them."""
        super().murder_pending()
        now = time.monotonic()
        while self.reading and self.reading[0].deadline <= now:
            self.drop(self.reading[0], 408)

    def drop(self, conn, status=None):
        self.poller.unregister(conn.sock)
        self.reading.remove(conn)
        if status:
            reason = {400: "Bad Request", 408: "Request Timeout", 413: "Content Too Large",
                      431: "Request Header Fields Too Large"}[status]
            _send_quietly(conn.sock, f"HTTP/1.1 {status} {reason}\r\nConnection: close\r\n"
                                     "Content-Length: 0\r\n\r\n".encode())
            self.log.debug("request refused before the app: %s from %s", status, conn.client)
        self.nr_conns -= 1
        conn.close()


def _send_quietly(sock: socket.socket, data: bytes) -> None:
    """Best effort, never blocking: the client may be gone or not reading."""
    try:
        sock.send(data)
    except OSError:
        pass
