"""A local fake of Twilio's Conversations REST API, over real HTTP, failing on demand.

Serves the few resources the bot uses, shaped like Twilio's JSON, and records every
request. Faults on the next n message creations: `fail(n, status)` answers with an
error (`accepted=True`: after creating the message, as when Twilio's answer is lost),
`garble(n)` creates the message and answers 201 with a body that is not JSON, `cut(n)`
creates it and drops the connection halfway through the answer (`faults_left`: how many
of these are still to come). `land_late(seconds, messages)` holds the creation of a
reply to each of those messages that long before it lands (reads stay fast and do not
see it until then), or drops it (`lands=False`).
`fail_reads(n, status)` answers the next n message listings with an error.
`answers()` counts the messages created per inReplyTo. `latency` delays every answer,
`stop()`/`start()` take the whole server down and up. A creation with both Body and
ContentVariables is refused like Twilio refuses it (400, 35127).
Also runs alone for local tries and the benchmark:
    python -m tests.support.fake_conversations --port 4010 --latency 0.3 --any-conversation
A conversation the fake was not told of (`add_conversation`, `message_added`, POST
/v1/Conversations) is a 404 with Twilio's error body (20404), as Twilio answers; with
`--any-conversation` (`any_conversation=True`) every SID exists.
"""

from __future__ import annotations

import argparse
import base64
import io
import itertools
import json
import secrets
import socket
import threading
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote

from werkzeug.wrappers import Request, Response

from app.cli import sample_events as samples
from tests.support import fake_webhook_config


@dataclass
class Created:
    """One message creation request as the fake received it."""

    conversation_sid: str
    form: dict
    headers: dict
    sid: str
    at: float = field(default_factory=time.monotonic)  # created (the answer follows)
    received_at: float = 0.0  # when the request arrived (monotonic), before any latency

    @property
    def body(self) -> str | None:
        return self.form.get("Body")

    @property
    def content_sid(self) -> str | None:
        return self.form.get("ContentSid")

    @property
    def content_variables(self) -> dict | None:
        """The template's variables, parsed (None when there are none)."""
        text = self.form.get("ContentVariables")
        return None if text is None else json.loads(text)

    @property
    def in_reply_to(self) -> str | None:
        """The MessageSid this reply answers, from the attributes the bot sets."""
        return json.loads(self.form.get("Attributes") or "{}").get("inReplyTo")


class FakeConversationsAPI:
    def __init__(self, account_sid: str, auth_token: str, *, port: int = 0,
                 latency: float = 0.0, check_auth: bool = True, any_conversation: bool = False):
        self.account_sid = account_sid
        # Like Twilio, a conversation it was not told of is a 404 (20404); `any_conversation`
        # makes every SID exist, for local tries and the benchmark (new SIDs each webhook).
        self.any_conversation = any_conversation
        self.auth_token = auth_token
        self.check_auth = check_auth
        self.latency = latency
        self.port = port
        self.created: list[Created] = []
        self.messages: dict[str, list[dict]] = {}
        self.receipts: dict[str, list[dict]] = {}
        self.requests: list[tuple[str, str]] = []
        self.on_create = None  # called with the Created record before answering
        # Concurrency: the most requests seen in flight at once; with `throttle_above`
        # set, a request beyond that many in flight gets 429 (20429) with Retry-After.
        self.in_flight = 0
        self.max_in_flight = 0
        self.throttle_above: int | None = None
        self.retry_after: float | None = None
        self.throttled = 0
        # Extra resources (webhook configuration, addresses, ...): callables taking
        # (api, request, path parts) and answering a Response, or None when not theirs.
        self.routes: list = []
        self.webhook_config = fake_webhook_config.install(self)  # account-wide and per service
        self._faults: list[_Fault] = []
        self._read_faults: list[int] = []
        self._late: dict[str, _Late] = {}  # inReplyTo -> how the reply's creation lands
        self._holding: set[str] = set()  # inReplyTo of the creations held right now
        self.dropped: list[Created] = []  # creations held, then never made
        self._lock = threading.Lock()
        self._index = itertools.count()
        self._server = None
        self._thread = None
        from tests.support.fake_resources import Resources  # it imports this module

        self.resources = Resources(self)

    # -- control ------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FakeConversationsAPI:
        self._server = _Server(("127.0.0.1", self.port), self)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        """Take the API down: no new connections, and the open ones are cut."""
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server.cut_connections()
            self._server = None

    def fail(self, times: int, status: int = 503, code: int | None = None, *,
             accepted: bool = False) -> None:
        """Answer the next `times` message creations with HTTP `status` (with `accepted`,
        after creating the message: the sender cannot tell that Twilio has it)."""
        with self._lock:
            self._faults.extend([_Fault("error", status, code, accepted)] * times)

    def garble(self, times: int) -> None:
        """Create the next `times` messages but answer 201 with a body that is not JSON."""
        with self._lock:
            self._faults.extend([_Fault("garble", 201, None, True)] * times)

    def cut(self, times: int) -> None:
        """Create the next `times` messages but drop the connection halfway through the
        answer (the client sees a connection broken mid-body)."""
        with self._lock:
            self._faults.extend([_Fault("cut", 201, None, True)] * times)

    @property
    def faults_left(self) -> int:
        """How many of the faults planned by fail(), garble() and cut() are still to come."""
        with self._lock:
            return len(self._faults)

    def land_late(self, seconds: float, messages: Iterable[str], *, lands: bool = True) -> None:
        """Hold the first creation of a reply to each of `messages` (MessageSids, as the
        reply's inReplyTo) `seconds` before it lands and is answered; reads meanwhile stay
        fast and do not show it, as when Twilio is slow to create. With `lands=False`
        the message is never created (a 500 follows the wait): a client that gave up
        cannot tell the two apart."""
        with self._lock:
            self._late.update({sid: _Late(seconds, lands) for sid in messages})

    @property
    def holding(self) -> frozenset[str]:
        """The inReplyTo of each creation held right now (not yet landed)."""
        with self._lock:
            return frozenset(self._holding)

    def answers(self) -> Counter:
        """How many messages were created in reply to each MessageSid (by inReplyTo)."""
        with self._lock:
            return Counter(c.in_reply_to for c in self.created)

    def fail_reads(self, times: int, status: int = 503) -> None:
        """Answer the next `times` message listings with HTTP `status`."""
        with self._lock:
            self._read_faults.extend([status] * times)

    def add_conversation(self, conversation_sid: str | None = None) -> str:
        """Make a conversation exist (the API answers 404 for any other); return its SID."""
        sid = conversation_sid or "CH" + secrets.token_hex(16)
        with self._lock:
            self.messages.setdefault(sid, [])
        return sid

    def has_conversation(self, conversation_sid: str) -> bool:
        if self.any_conversation and conversation_sid.startswith("CH"):
            self.add_conversation(conversation_sid)
        return conversation_sid in self.messages

    def message_added(self, **overrides) -> dict:
        """The onMessageAdded webhook of a customer's message in a conversation that
        exists here (a new one unless `conversation_sid` is given; made to exist)."""
        overrides["conversation_sid"] = self.add_conversation(overrides.get("conversation_sid"))
        return samples.build("onMessageAdded", account_sid=self.account_sid, **overrides)

    def add_message(self, conversation_sid: str, author: str, body: str,
                    attributes: str = "{}", sid: str | None = None) -> dict:
        """Put a message into a conversation as if a customer had written it."""
        message = self._message(conversation_sid, author, body, attributes, sid)
        with self._lock:
            self.messages.setdefault(conversation_sid, []).append(message)
        return message

    def add_receipt(self, conversation_sid: str, message_sid: str, status: str,
                    error_code: int | None = None) -> None:
        self.receipts.setdefault(message_sid, []).append({
            "sid": "DY" + secrets.token_hex(16), "account_sid": self.account_sid,
            "conversation_sid": conversation_sid, "message_sid": message_sid,
            "channel_message_sid": "SM" + secrets.token_hex(16),
            "participant_sid": "MB" + secrets.token_hex(16), "status": status,
            "error_code": error_code, "date_created": _now(), "date_updated": _now(),
            "url": f"{self.url}/v1/Conversations/{conversation_sid}/Messages/"
                   f"{message_sid}/Receipts",
        })

    @property
    def calls(self) -> list[tuple[str, str]]:
        """The (method, path) of each call to the API itself: not a stray health probe
        from another test's server that had this port before."""
        return [(method, path) for method, path in self.requests if path.startswith("/v1/")]

    def replies_to(self, conversation_sid: str) -> list[Created]:
        return [c for c in self.created if c.conversation_sid == conversation_sid]

    # -- HTTP ---------------------------------------------------------------------

    def handle(self, request: Request) -> Response:
        received_at = time.monotonic()
        with self._lock:
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
            throttled = self.throttle_above is not None and self.in_flight > self.throttle_above
            if throttled:
                self.throttled += 1
        try:
            if self.latency:
                time.sleep(self.latency)
            if throttled:
                response = _error(429, 20429, "Too Many Requests")
                if self.retry_after is not None:
                    response.headers["Retry-After"] = f"{self.retry_after:g}"
                return response
            return self._handle(request, received_at)
        finally:
            with self._lock:
                self.in_flight -= 1

    def _handle(self, request: Request, received_at: float) -> Response:
        if request.path == "/_fake/stats":  # for the benchmark, which runs the fake apart
            return _json(200, {"created": len(self.created), "throttled": self.throttled,
                               "max_in_flight": self.max_in_flight})
        self.requests.append((request.method, request.path))
        if self.check_auth and not self._authorized(request):
            return _error(401, 20003, "Authenticate")
        parts = [p for p in request.path.split("/") if p]
        for route in self.routes:
            response = route(self, request, parts)
            if response is not None:
                return response
        if parts[:2] != ["v1", "Conversations"]:
            return _error(404, 20404, "The requested resource was not found")
        if len(parts) == 2 and request.method == "GET":
            return self._list_conversations(request)
        conversation_sid = parts[2] if len(parts) > 2 else ""
        if not self.has_conversation(conversation_sid):  # as Twilio: none is made up
            return _error(404, 20404, "The requested resource was not found")
        if len(parts) == 4 and parts[3] == "Messages":
            if request.method == "POST":
                return self._create_message(conversation_sid, request, received_at)
            return self._list_messages(conversation_sid, request)
        if len(parts) == 6 and parts[5] == "Receipts":
            items = self.receipts.get(parts[4], [])
            return _page(request, "delivery_receipts", items)
        return _error(404, 20404, "The requested resource was not found")

    def _authorized(self, request: Request) -> bool:
        expected = base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        return request.headers.get("Authorization") == f"Basic {expected}"

    def _create_message(self, conversation_sid: str, request: Request,
                        received_at: float) -> Response:
        form = request.form.to_dict()
        if "Body" in form and "ContentVariables" in form:
            return _error(400, 35127, "Body and ContentVariables cannot both be set")
        in_reply_to = _in_reply_to(form)
        with self._lock:
            late = self._late.pop(in_reply_to, None) if in_reply_to else None
        if late and not self._hold(late, in_reply_to):
            with self._lock:
                self.dropped.append(Created(conversation_sid, form, dict(request.headers), "",
                                            received_at=received_at))
            return _error(500, 20500, "fake failure: the message was never created")
        with self._lock:
            fault = self._faults.pop(0) if self._faults else None
        if fault and not fault.accepted:
            return fault.answer()
        message = self._message(conversation_sid, form.get("Author", "system"),
                                form.get("Body"), form.get("Attributes", "{}"),
                                content_sid=form.get("ContentSid"))
        record = Created(conversation_sid, form, dict(request.headers), message["sid"],
                         received_at=received_at)
        with self._lock:
            self.messages[conversation_sid].append(message)
            self.created.append(record)
        if self.on_create:
            self.on_create(record)
        return fault.answer(message) if fault else _json(201, message)

    def _hold(self, late: _Late, in_reply_to: str) -> bool:
        """Hold a creation until it lands; return whether it is to be made at all."""
        with self._lock:
            self._holding.add(in_reply_to)
        try:
            time.sleep(late.seconds)
        finally:
            with self._lock:
                self._holding.discard(in_reply_to)
        return late.lands

    def _list_messages(self, conversation_sid: str, request: Request) -> Response:
        with self._lock:
            fault = self._read_faults.pop(0) if self._read_faults else None
            items = list(self.messages[conversation_sid])
        if fault:
            return _Fault("error", fault, None, False).answer()
        if request.args.get("Order") == "desc":
            items.reverse()
        return _page(request, "messages", items)

    def _list_conversations(self, request: Request) -> Response:
        items = [{"sid": sid, "account_sid": self.account_sid, "state": "active",
                  "friendly_name": None, "date_created": _now(), "date_updated": _now()}
                 for sid in reversed(list(self.messages))]
        return _page(request, "conversations", items)

    def _message(self, conversation_sid, author, body, attributes, sid=None,
                 content_sid=None) -> dict:
        sid = sid or "IM" + secrets.token_hex(16)
        return {
            "sid": sid, "account_sid": self.account_sid,
            "conversation_sid": conversation_sid, "author": author, "body": body,
            "content_sid": content_sid,
            "attributes": attributes, "index": next(self._index), "media": None,
            "participant_sid": None, "date_created": _now(), "date_updated": None,
            "delivery": None, "links": {},
            "url": f"{self.url}/v1/Conversations/{conversation_sid}/Messages/{sid}",
        }


@dataclass(frozen=True)
class _Late:
    """A creation held `seconds` before it lands (or is dropped, `lands=False`)."""

    seconds: float
    lands: bool


def _in_reply_to(form: dict) -> str | None:
    try:
        attributes = json.loads(form.get("Attributes") or "{}")
    except ValueError:
        return None
    return attributes.get("inReplyTo") if isinstance(attributes, dict) else None


@dataclass(frozen=True)
class _Fault:
    """One planned misbehaviour of the API: the answer to give instead of the right one."""

    kind: str  # error | garble | cut
    status: int
    code: int | None
    accepted: bool  # the message is created before answering

    def answer(self, message: dict | None = None) -> Response:
        if self.kind == "garble":
            return Response("<html><body>Service Unavailable</body></html>",
                            status=self.status, mimetype="text/html")
        if self.kind == "cut":
            response = _json(self.status, message or {})
            response.cut = True
            return response
        return _error(self.status, self.code or (20429 if self.status == 429 else 20500),
                      f"fake failure {self.status}")


class _Server(ThreadingHTTPServer):
    """HTTP/1.1 with keep-alive, as api.twilio.com (werkzeug's development server closes
    every connection, which would make each reply pay a new connection)."""

    daemon_threads = True

    def __init__(self, address, api: FakeConversationsAPI):
        self.api = api
        self.connections: set[socket.socket] = set()
        super().__init__(address, _Handler)

    def process_request(self, request, client_address):
        self.connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request):
        self.connections.discard(request)
        super().shutdown_request(request)

    def cut_connections(self) -> None:
        for connection in list(self.connections):
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stalls

    def do_GET(self) -> None:  # noqa: N802 - http.server's naming
        length = int(self.headers.get("Content-Length") or 0)
        path, _, query = self.path.partition("?")
        environ = {
            "REQUEST_METHOD": self.command, "PATH_INFO": unquote(path), "QUERY_STRING": query,
            "SERVER_NAME": "127.0.0.1", "SERVER_PORT": str(self.server.server_port),
            "SERVER_PROTOCOL": self.request_version, "wsgi.url_scheme": "http",
            "REMOTE_ADDR": self.client_address[0], "REMOTE_PORT": str(self.client_address[1]),
            "wsgi.input": io.BytesIO(self.rfile.read(length)), "CONTENT_LENGTH": str(length),
            "CONTENT_TYPE": self.headers.get("Content-Type", ""),
        }
        for name, value in self.headers.items():
            environ["HTTP_" + name.upper().replace("-", "_")] = value
        response = self.server.api.handle(Request(environ))
        try:
            self._answer(response)
        except (BrokenPipeError, ConnectionResetError):  # the client gave up waiting
            self.close_connection = True

    def _answer(self, response: Response) -> None:
        body = response.get_data()
        self.send_response(response.status_code)
        for name, value in response.headers.items():
            if name.lower() != "content-length":
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if getattr(response, "cut", False):  # half the promised body, then hang up
            self.wfile.write(body[: len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(body)

    do_POST = do_DELETE = do_GET

    def log_message(self, format, *args) -> None:  # noqa: A002 - quiet, like Twilio
        pass


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _json(status: int, payload: dict) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")


def _error(status: int, code: int, message: str) -> Response:
    return _json(status, {"code": code, "message": message, "status": status,
                          "more_info": f"https://www.twilio.com/docs/errors/{code}"})


def _page(request: Request, key: str, items: list[dict]) -> Response:
    size = int(request.args.get("PageSize", 50))
    url = request.base_url
    return _json(200, {key: items[:size], "meta": {
        "page": 0, "page_size": size, "first_page_url": url, "previous_page_url": None,
        "url": url, "next_page_url": None, "key": key}})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=4010)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds per request")
    parser.add_argument("--account-sid", default="AC" + "0" * 32)
    parser.add_argument("--auth-token", default="0" * 32)
    parser.add_argument("--no-auth", action="store_true", help="accept any credentials")
    parser.add_argument("--any-conversation", action="store_true",
                        help="every Conversation SID exists (for webhooks sent with "
                             "`flask --app wsgi send-event`, each in a new conversation)")
    parser.add_argument("--throttle-above", type=int, default=None,
                        help="answer 429 to requests beyond this many in flight")
    args = parser.parse_args()
    api = FakeConversationsAPI(args.account_sid, args.auth_token, port=args.port,
                               latency=args.latency, check_auth=not args.no_auth,
                               any_conversation=args.any_conversation)
    api.throttle_above = args.throttle_above
    api.start()
    print(f"fake Conversations API on {api.url} (latency {args.latency}s)\n"
          "Run the bot against it with these lines in .env (the server and every "
          "`flask --app wsgi` command read it):\n"
          f"TWILIO_ACCOUNT_SID={args.account_sid}\n"
          f"TWILIO_AUTH_TOKEN={args.auth_token}\n"
          f"TWILIO_API_BASE_URL={api.url}", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        api.stop()


if __name__ == "__main__":
    main()
