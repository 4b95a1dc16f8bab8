"""gunicorn settings, read automatically by `gunicorn wsgi:app` from this folder.

Every value can be overridden on the command line or with GUNICORN_CMD_ARGS.

The worker is gunicorn's gthread with two changes (`BufferingThreadWorker` below): a
request is read whole by the worker's event loop before a thread is given to it, the
way nginx buffers requests. Stock gthread gives a thread to a connection as soon as its
first byte arrives; a client sending its body at 1 byte/s then holds that thread for as
long as it likes, and 8 such clients (2 workers x 4 threads) stopped every webhook.
Here a slow client costs a file descriptor and its bytes, never a thread, and a request
that has not arrived whole within REQUEST_READ_TIMEOUT seconds (default 10) is answered
408 and closed. Measured numbers are in the README ("Which set-ups are safe to expose").
And the app is told when each request arrived whole (`X-Bot-Arrived`): the time it then
waits for a free thread counts against its deadline for the database (app/web/arrival.py).
"""

import os
import re
import selectors
import socket
import time
from collections import deque
from functools import partial

from gunicorn.http2 import negotiation
from gunicorn.workers.gthread import ThreadWorker

# Heroku (and most PaaS) give the port in $PORT; locally, stay on loopback.
bind = f"0.0.0.0:{os.environ['PORT']}" if os.environ.get("PORT") else "127.0.0.1:5000"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
timeout = 30
graceful_timeout = 25  # under Heroku's 30 s: lets in-flight replies finish on SIGTERM
keepalive = 5
accesslog = "-"
# PROXY_COUNT (werkzeug's ProxyFix) alone decides which X-Forwarded-* headers to trust.
forwarded_allow_ips = ""
# One control socket per user would clash between instances on one machine.
control_socket_disable = True

REQUEST_READ_TIMEOUT = float(os.environ.get("REQUEST_READ_TIMEOUT", "10"))
MAX_HEAD = 64 * 1024  # request line and headers (gunicorn's own limits are lower)
MAX_BODY = 1024 * 1024  # larger bodies are refused here (413); the app's limit is lower
_CONTENT_LENGTH = re.compile(rb"\r\ncontent-length[ \t]*:[ \t]*(\d+)[ \t]*(?=\r\n)", re.I)
_CHUNKED = re.compile(rb"\r\ntransfer-encoding[ \t]*:", re.I)
_CONTINUE = re.compile(rb"\r\nexpect[ \t]*:[ \t]*100-continue", re.I)
ARRIVED = "X-BOT-ARRIVED"  # gunicorn's header names are upper case


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

    def enqueue_req(self, conn):
        """Buffer the request in the event loop; hand it to a thread once whole."""
        if self.cfg.is_ssl or negotiation.prior_knowledge_allowed(self.cfg, conn.client):
            return super().enqueue_req(conn)  # TLS or HTTP/2 in gunicorn: as gthread does
        conn.request = RequestBuffer()
        conn.continued = False
        conn.deadline = time.monotonic() + REQUEST_READ_TIMEOUT
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


worker_class = BufferingThreadWorker


def post_worker_init(worker):
    """Start the app's background work (the sender) in each worker, after the fork:
    never in the master, even with --preload."""
    if getattr(worker.wsgi, "import_name", None) != "app":
        return  # another app (the benchmark's floor): do not even import this one
    from app import start_background_work

    start_background_work(worker.wsgi)


def worker_exit(server, worker):
    """Stop the background work while the worker can still finish it: sends in flight
    are completed and recorded. An atexit handler runs too late in a gunicorn worker:
    by then the interpreter's shutdown has stopped the thread pools they need."""
    if getattr(getattr(worker, "wsgi", None), "import_name", None) != "app":
        return
    from app.services import services

    services(worker.wsgi).supervisor.stop()


def on_starting(server):
    """This app's metrics, shared by its workers; gunicorn's lines in LOG_FORMAT."""
    if str(getattr(server.app, "app_uri", "")).startswith("wsgi"):  # not another app
        from app.observability.gunicorn import on_starting
        on_starting(server)


def child_exit(server, worker):
    """A worker has gone: prometheus_client's bookkeeping for its metric files."""
    if str(getattr(server.app, "app_uri", "")).startswith("wsgi"):
        from app.observability.gunicorn import child_exit
        child_exit(server, worker)
