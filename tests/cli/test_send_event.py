"""`send-event` against a real gunicorn server: every event type, recorded payloads, any
URL signed exactly, the development token in dry-run mode, the settings of `.env`, and
channels."""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs

import pytest

from app import create_app
from app.pipeline.events import KNOWN_EVENTS, PRE_EVENTS
from tests.support.servers import checkout_copy, flask_cli, free_port, gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN

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
    deep = tmp_path / "deep.json"
    deep.write_text('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = send("--payload", str(deep))  # once a RecursionError traceback
    assert result.exit_code == 2 and "JSON nested too deeply" in result.output
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes("EventType=onMessageAdded&Body=caf\xe9".encode("latin-1"))
    result = send("--payload", str(latin1))
    assert result.exit_code == 2 and "not UTF-8" in result.output
    result = send("--param", "Body")  # no '=': a typo, not a parameter to drop silently
    assert result.exit_code == 2 and "'Body': expected NAME=VALUE" in result.output


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
    and refuses the live Auth Token's signature with 403 (exit status 1) and a hint; with
    AGENT_IDENTITIES unset, alice@support is an agent there (the README's example)."""
    dry = {**env, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": "", "AGENT_IDENTITIES": ""}
    with gunicorn(dry, tmp_path / "dry.log", workers=1) as server:
        url = server.url + "/webhooks/conversations"
        runner = create_app(dry).test_cli_runner()
        ok = runner.invoke(args=["send-event", "--url", url])
        assert ok.exit_code == 0 and "outcome: reply queued" in ok.output, ok.output
        agent = runner.invoke(args=["send-event", "--url", url, "--author", "alice@support"])
        assert "outcome: ignored: written by an agent" in agent.output, agent.output
        other = runner.invoke(args=["send-event", "--url", url, "--author", "bob@support"])
        assert "outcome: reply queued" in other.output, other.output
        live = create_app(env).test_cli_runner().invoke(args=["send-event", "--url", url])
        assert live.exit_code == 1 and live.output.startswith("HTTP 403")
        assert f"hint: this command signed with the Auth Token of {ACCOUNT_SID}" in live.output


def test_the_fake_api_recipe_works_with_its_settings_in_dotenv(fake_api, database_url,
                                                              tmp_path):
    """The server and send-event both read the `.env` beside the code: settings put there
    (not on one terminal's command line) sign and check with the same Auth Token, so the
    message is answered through the fake API. A terminal without them signs with the
    development token: 403, and the hint says why."""
    fake_api.any_conversation = True  # as `make fake-api` runs it: send-event's are new
    checkout = checkout_copy(tmp_path / "bot")
    (checkout / ".env").write_text(
        f"TWILIO_ACCOUNT_SID={ACCOUNT_SID}\nTWILIO_AUTH_TOKEN={AUTH_TOKEN}\n"
        f"TWILIO_API_BASE_URL={fake_api.url}\nAGENT_IDENTITIES=alice@support\n"
        f"DATABASE_URL={database_url}\n")
    with gunicorn({}, tmp_path / "server.log", workers=1, cwd=checkout) as server:
        url = ["--url", server.url + "/webhooks/conversations"]
        sent = flask_cli({}, "send-event", "--body", "Where is my order?", *url, cwd=checkout)
        assert sent.returncode == 0, sent.stdout + sent.stderr
        assert "outcome: reply queued" in sent.stdout
        message_sid = re.search(r"message sid: (IM\w+)", sent.stdout).group(1)
        wait_for(lambda: [c.in_reply_to for c in fake_api.created] == [message_sid])
        agent = flask_cli({}, "send-event", "--author", "alice@support", *url, cwd=checkout)
        assert "outcome: ignored: written by an agent" in agent.stdout, agent.stdout
        elsewhere = flask_cli({"INSTANCE_DIR": tmp_path / "elsewhere"}, "send-event", *url)
    assert elsewhere.returncode == 1 and elsewhere.stdout.startswith("HTTP 403")
    assert "signed with the development token" in elsewhere.stderr
    assert "in .env" in elsewhere.stderr


@pytest.fixture
def recorder():
    """A stub server that answers 200 and keeps each posted form."""
    forms = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):  # noqa: N802
            body = self.rfile.read(int(self.headers["Content-Length"])).decode()
            forms.append({k: v[0] for k, v in parse_qs(body).items()})
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    stub = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=stub.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{stub.server_port}/webhooks/conversations", forms
    stub.shutdown()
    stub.server_close()


@pytest.mark.parametrize("args, source, author", [
    ([], "SMS", "+15558675310"),
    (["--channel", "sms"], "SMS", "+15558675310"),
    (["--channel", "whatsapp"], "WHATSAPP", "whatsapp:+15558675310"),
    (["--channel", "chat"], "SDK", "customer@example.com"),
    (["--channel", "whatsapp", "--author", "whatsapp:+4915112345678"], "WHATSAPP",
     "whatsapp:+4915112345678"),
    (["--author", "whatsapp:+4915112345678"], "WHATSAPP", "whatsapp:+4915112345678"),
    (["--author", "alice@support"], "SDK", "alice@support"),
])
def test_channel_sets_source_and_a_matching_author(make_app, recorder, args, source, author):
    """--channel picks Source and a customer of that channel; without it, Source follows
    the author; a chat message names its ClientIdentity, as Twilio's SDK events do."""
    url, forms = recorder
    result = make_app().test_cli_runner().invoke(args=["send-event", "--url", url, *args])
    assert result.exit_code == 0, result.output
    [form] = forms
    assert (form["Source"], form["Author"]) == (source, author)
    assert form.get("ClientIdentity") == (author if source == "SDK" else None)


@pytest.mark.parametrize("args", [
    ["--channel", "sms", "--author", "whatsapp:+15558675310"],
    ["--channel", "whatsapp", "--author", "+15558675310"],
    ["--channel", "chat", "--author", "+15558675310"],
])
def test_an_author_of_another_channel_is_refused(make_app, recorder, args):
    """--channel and an --author that contradicts it: a usage error, nothing sent."""
    url, forms = recorder
    result = make_app().test_cli_runner().invoke(args=["send-event", "--url", url, *args])
    assert result.exit_code == 2 and "is not a" in result.output
    assert forms == []


def test_the_message_sid_sent_is_printed_for_why(send, make_app):
    """The MessageSid printed is the one `why` knows about."""
    result = send("--body", "hello")
    message_sid = re.search(r"^message sid: (IM[0-9a-f]{32}) \(`flask --app wsgi why "
                            r"\1` says what the bot did with it\)$", result.output, re.M)
    assert message_sid, result.output
    why = make_app().test_cli_runner().invoke(args=["why", message_sid.group(1)])
    assert why.exit_code == 0 and "decision: REPLY" in why.output, why.output


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
    lines = result.output.splitlines()
    assert lines[:3] == [
        "HTTP 200 OK", "outcome: reply queued: default reply", "request id: req-42"]
    assert re.fullmatch(r"message sid: IM[0-9a-f]{32} \(.*\)", lines[3]) and len(lines) == 4
    down = runner.invoke(args=["send-event", "--url", f"http://127.0.0.1:{free_port()}/x"])
    assert down.exit_code == 1 and "could not reach" in down.output
