"""`send-event` against a real gunicorn server: every event type, recorded payloads, any
URL signed exactly, and the development token in dry-run mode."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from app import create_app
from app.pipeline.events import KNOWN_EVENTS, PRE_EVENTS
from tests.conftest import ACCOUNT_SID
from tests.servers import free_port, gunicorn

pytestmark = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)

# A real capture's shape (see the Conversations reference), with our test account.
CAPTURED = ("MessagingServiceSid=MG" + "2" * 32 + "&EventType=onMessageAdded&Attributes=%7B%7D"
            "&DateCreated=2024-12-18T14%3A35%3A28.423Z&Index=8&ChatServiceSid=IS" + "3" * 32
            + "&MessageSid=IM" + "4" * 32 + f"&AccountSid={ACCOUNT_SID}&Source=SMS"
            "&RetryCount=0&Author=%2B4915112345678&ParticipantSid=MB" + "5" * 32
            + "&Body=Where+is+my+order%3F&ConversationSid=CH" + "6" * 32)


@pytest.fixture
def server(env, tmp_path):
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        yield server


@pytest.fixture
def send(make_app, server):
    """Run send-event from an app whose PUBLIC_BASE_URL is the server's."""
    runner = make_app(PUBLIC_BASE_URL=server.url).test_cli_runner()
    return lambda *args: runner.invoke(args=["send-event", *args])


def test_every_event_type_is_signed_and_accepted(send):
    """Each event type Twilio documents goes to its endpoint (pre-events to /pre) and gets
    200; the outcome header is printed."""
    for event_type in sorted(KNOWN_EVENTS):
        result = send(event_type)
        assert result.exit_code == 0, (event_type, result.output)
        assert result.output.startswith("HTTP 200 OK"), (event_type, result.output)
        if event_type in PRE_EVENTS:
            assert "outcome: unchanged" in result.output
    assert "outcome: reply queued" in send("onMessageAdded").output
    receipt = send("onDeliveryUpdated", "--status", "undelivered", "--error-code", "30003")
    assert "outcome: receipt undelivered" in receipt.output


def test_a_recorded_payload_is_replayed(send, tmp_path):
    """Form-encoded as captured: answered, then a duplicate; JSON: numbers become text,
    EVENT_TYPE and --param override."""
    captured = tmp_path / "captured.txt"
    captured.write_text(CAPTURED + "\n")
    first = send("--payload", str(captured))
    assert first.exit_code == 0, first.output
    assert "outcome: reply queued" in first.output
    assert "outcome: duplicate" in send("--payload", str(captured)).output
    recorded = tmp_path / "receipt.json"
    recorded.write_text(json.dumps({
        "EventType": "onDeliveryUpdated", "AccountSid": ACCOUNT_SID,
        "ConversationSid": "CH" + "6" * 32, "MessageSid": "IM" + "7" * 32,
        "DeliveryReceiptSid": "DY" + "8" * 32, "ChannelMessageSid": "SM" + "9" * 32,
        "ParticipantSid": "MB" + "5" * 32, "Status": "delivered", "ErrorCode": 0}))
    result = send("--payload", str(recorded), "--param", "Status=failed",
                  "--param", "ErrorCode=30007")
    assert result.exit_code == 0, result.output
    assert "outcome: receipt failed" in result.output
    renamed = send("onMessageAdded", "--payload", str(captured), "--param",
                   "MessageSid=IM" + "a" * 32, "--param", "ConversationSid=CH" + "b" * 32)
    assert "outcome: reply queued" in renamed.output


def test_a_payload_without_an_event_type_or_unparsable_is_refused(make_app, tmp_path):
    """Refused before anything is sent."""
    runner = make_app().test_cli_runner()

    def send(*args):
        return runner.invoke(args=["send-event", *args])

    bare = tmp_path / "bare.txt"
    bare.write_text("Body=hello")
    assert "has no EventType" in send("--payload", str(bare)).output
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    result = send("--payload", str(garbage))
    assert result.exit_code == 2 and "not valid JSON" in result.output


def test_any_url_is_signed_exactly(send, server):
    """Another spelling of the origin, and a query string: what a proxy in front sees is
    what is signed, so a deployed server can be tried through its proxy."""
    port = server.url.rsplit(":", 1)[1]
    url = f"http://localhost:{port}/webhooks/conversations?source=smoke-test"
    result = send("--url", url)
    assert result.exit_code == 0, result.output
    assert "outcome: reply queued" in result.output


def test_dry_run_signs_with_the_development_token(env, tmp_path):
    """A dry-run server takes what a dry-run send-event signs (the same instance folder),
    and refuses the live Auth Token's signature with 403 (exit status 1)."""
    dry = {**env, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""}
    with gunicorn(dry, tmp_path / "dry.log", workers=1) as server:
        url = server.url + "/webhooks/conversations"
        ok = create_app(dry).test_cli_runner().invoke(args=["send-event", "--url", url])
        assert ok.exit_code == 0 and "outcome: reply queued" in ok.output, ok.output
        live = create_app(env).test_cli_runner().invoke(args=["send-event", "--url", url])
        assert live.exit_code == 1 and live.output.startswith("HTTP 403")


def test_request_id_is_printed_and_an_unreachable_url_fails(make_app):
    """A proxy's or the server's X-Request-Id is shown, to find the request in the logs."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("X-Webhook-Outcome", "reply queued: default reply")
            self.send_header("X-Request-Id", "req-42")
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    runner = make_app().test_cli_runner()
    try:
        url = f"http://127.0.0.1:{stub.server_port}/webhooks/conversations"
        result = runner.invoke(args=["send-event", "--url", url])
    finally:
        stub.shutdown()
        stub.server_close()
    assert result.output.splitlines() == [
        "HTTP 200 OK", "outcome: reply queued: default reply", "request id: req-42"]
    down = runner.invoke(args=["send-event", "--url", f"http://127.0.0.1:{free_port()}/x"])
    assert down.exit_code == 1 and "could not reach" in down.output
