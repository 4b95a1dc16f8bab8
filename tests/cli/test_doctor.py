"""`doctor`: one line per check, against the fake API, a local TLS server standing in for
the public URL, and the test database; exit 1 when anything fails."""

from __future__ import annotations

import json
import shutil
import ssl
import subprocess
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from sqlalchemy import insert

from app import create_app
from app.services import services
from app.store.models import Reply, SenderHeartbeat, utcnow
from tests.support.servers import ROOT
from tests.support.webhooks import AUTH_TOKEN

OURS = "/webhooks/conversations"
HANDLED = ["onMessageAdded", "onDeliveryUpdated"]
sqlite_only = pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory):
    """A self-signed certificate for 127.0.0.1 (openssl), and its file as a CA bundle."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    return cert, key


class PublicSite:
    """An https server on loopback answering /healthz as told (the public URL)."""

    def __init__(self, certificate):
        self.answer = (200, {"status": "ok", "database": "ok", "sender": "running"})
        site = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802
                status, body = site.answer if self.path == "/healthz" else (404, {})
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(*map(str, certificate))
        self.server.socket = context.wrap_socket(self.server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def site(certificate, monkeypatch):
    """The public site, its certificate trusted as a real one would be."""
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(certificate[0]))
    site = PublicSite(certificate)
    yield site
    site.server.shutdown()
    site.server.server_close()


@pytest.fixture
def healthy(make_app, fake_api, site):
    """Everything right: webhooks point here, a sender is alive, no reply waits."""
    fake_api.webhook_config.account.update(post_webhook_url=site.url + OURS, filters=HANDLED)
    app = make_app(PUBLIC_BASE_URL=site.url, RESPONDER_RULES=str(ROOT / "rules.example.toml"))
    heartbeat(app, seconds_ago=1)
    return app


def heartbeat(app, seconds_ago: float, sender_id: str = "host:1:abc") -> None:
    with services(app).db.transaction() as conn:
        conn.execute(insert(SenderHeartbeat).values(
            id=sender_id, heartbeat_at=utcnow() - timedelta(seconds=seconds_ago)))


def doctor(app) -> tuple[int, dict[str, str]]:
    """Run the doctor: its exit status and each check's line by the check's name."""
    result = app.test_cli_runner().invoke(args=["doctor"])
    lines = result.output.splitlines()[:-1]  # the last line counts them
    return result.exit_code, {line.split(":")[0].split(None, 1)[1]: line for line in lines}


def test_a_healthy_deployment_passes_every_check(healthy, site):
    """Every line OK, naming what was found; exit 0."""
    result = healthy.test_cli_runner().invoke(args=["doctor"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert all(line.startswith("OK ") for line in lines[:-1]), result.output
    assert lines[-1] == f"{len(lines) - 1} OK, 0 WARN, 0 FAIL"
    out = result.output
    assert f"account-wide -> {site.url}{OURS}" in out
    assert f"{site.url}/healthz answers 200" in out
    assert "1 alive" in out and "no reply waiting" in out and "rules.example.toml" in out


@sqlite_only
def test_dry_run_mode_fails_and_twilio_is_not_asked(env, fake_api):
    app = create_app({**env, "TWILIO_ACCOUNT_SID": "", "TWILIO_AUTH_TOKEN": ""})
    status, lines = doctor(app)
    assert status == 1
    assert lines["settings"].startswith("FAIL") and "TWILIO_AUTH_TOKEN" in lines["settings"]
    assert lines["credentials"].startswith("WARN") and "not checked" in lines["credentials"]
    assert lines["webhooks"].startswith("WARN")
    assert fake_api.requests == []


@sqlite_only
def test_rejected_credentials_fail_with_the_fix(healthy, fake_api):
    fake_api.auth_token = AUTH_TOKEN[::-1]
    status, lines = doctor(healthy)
    assert status == 1
    assert lines["credentials"].startswith("FAIL") and "HTTP 401" in lines["credentials"]
    assert "20003" in lines["credentials"]
    assert "fix: set TWILIO_AUTH_TOKEN to the primary Auth Token" in lines["credentials"]
    assert lines["webhooks"].startswith("WARN")


@sqlite_only
@pytest.mark.parametrize(("setup", "expected"), [
    (lambda c, url: c.account.update(post_webhook_url="https://old.example.net/hook"),
     "FAIL webhooks: no post-event webhook points at"),
    (lambda c, url: c.account.update(filters=["onMessageAdded"]),
     "without the filters onDeliveryUpdated -- fix: flask --app wsgi webhooks configure"),
    (lambda c, url: c.account.update(method="GET"), "with method GET (POST is needed)"),
    (lambda c, url: c.add_service("Legacy", post_webhook_url="https://old.example.net/x"),
     "WARN webhooks: account-wide points here, but service IS"),
])
def test_webhook_configuration_problems(healthy, fake_api, site, setup, expected):
    """Not pointing here, missing a filter, GET, a service overriding it elsewhere."""
    setup(fake_api.webhook_config, site.url)
    status, lines = doctor(healthy)
    assert expected in lines["webhooks"]
    assert status == (0 if expected.startswith("WARN") else 1)


@sqlite_only
def test_a_service_of_its_own_pointing_here_counts(healthy, fake_api, site):
    """Only a service points here, without a filter: the fix names that service."""
    config = fake_api.webhook_config
    config.account.update(post_webhook_url=None, filters=[])
    sid = config.add_service("Support", post_webhook_url=site.url + OURS,
                             filters=["onMessageAdded"])
    _, lines = doctor(healthy)
    assert f"service {sid} (Support) points here without the filters" in lines["webhooks"]
    assert f"webhooks configure --service {sid}" in lines["webhooks"]


@sqlite_only
@pytest.mark.parametrize(("public", "expected"), [
    ("", "FAIL PUBLIC_BASE_URL: not set"),
    ("http://bot.example.com", "FAIL PUBLIC_BASE_URL: http://bot.example.com is not https"),
])
def test_public_base_url_must_be_set_and_https(make_app, public, expected):
    status, lines = doctor(make_app(PUBLIC_BASE_URL=public))
    assert status == 1 and lines["PUBLIC_BASE_URL"].startswith(expected)


@sqlite_only
@pytest.mark.parametrize(("answer", "expected"), [
    ((503, {"status": "unavailable", "reason": "sender died (RuntimeError: x)"}),
     "answers 503: sender died (RuntimeError: x) -- fix: see the server's log"),
    ((502, {}), "answers HTTP 502, not this server's health"),
])
def test_the_public_health_check_must_answer_ok(healthy, site, answer, expected):
    site.answer = answer
    status, lines = doctor(healthy)
    assert status == 1 and expected in lines["public /healthz"]


@sqlite_only
def test_an_untrusted_certificate_fails_and_an_unreachable_url_warns(healthy, site,
                                                                      monkeypatch):
    """Twilio refuses a certificate it cannot verify; an unreachable URL may only be
    unreachable from here."""
    monkeypatch.delenv("REQUESTS_CA_BUNDLE")
    status, lines = doctor(healthy)
    assert status == 1 and "TLS certificate refused" in lines["public /healthz"]
    site.server.shutdown()
    site.server.server_close()
    status, lines = doctor(healthy)
    assert status == 0 and lines["public /healthz"].startswith("WARN")
    assert "not reachable from here" in lines["public /healthz"]


@sqlite_only
def test_a_database_unreachable_or_not_migrated_fails(make_app, tmp_path):
    down = make_app(DATABASE_URL="postgresql://postgres@127.0.0.1:1/nothing",
                    DATABASE_AUTO_UPGRADE="false")
    status, lines = doctor(down)
    assert status == 1 and lines["database"].startswith("FAIL database: unreachable")
    assert "check DATABASE_URL" in lines["database"]
    assert lines["sender"].startswith("WARN") and lines["queue"].startswith("WARN")
    empty = make_app(DATABASE_URL=f"sqlite:///{tmp_path / 'empty.sqlite3'}",
                     DATABASE_AUTO_UPGRADE="false")
    status, lines = doctor(empty)
    assert status == 1 and "schema at nothing" in lines["database"]
    assert "fix: flask --app wsgi db upgrade" in lines["database"]


def test_no_live_sender_fails(healthy, make_app):
    """A heartbeat older than SEND_LEASE is a dead sender; none at all likewise."""
    with services(healthy).db.transaction() as conn:
        conn.execute(SenderHeartbeat.__table__.delete())
    status, lines = doctor(healthy)
    assert status == 1 and "no sender is running" in lines["sender"]
    assert "none recorded" in lines["sender"] and "SENDER_IN_PROCESS" in lines["sender"]
    heartbeat(healthy, seconds_ago=600)
    status, lines = doctor(healthy)
    assert status == 1 and "the last one 10 min ago" in lines["sender"]


@pytest.mark.parametrize(("waiting", "expected"), [
    (timedelta(minutes=10), "FAIL queue: 1 reply due, the oldest for 10 min: stuck"),
    (timedelta(minutes=2), "WARN queue: 1 reply due, the oldest for 2 min: slow"),
    (timedelta(seconds=-30), "OK   queue: no reply waiting"),  # a retry due later
])
def test_a_stuck_queue_is_reported(healthy, waiting, expected):
    with services(healthy).db.transaction() as conn:
        conn.execute(insert(Reply).values(
            in_reply_to="IM" + "1" * 32, conversation_sid="CH" + "1" * 32,
            author="support-bot", body="hi", status="queued",
            next_attempt_at=utcnow() - waiting))
    status, lines = doctor(healthy)
    assert lines["queue"].startswith(expected), lines["queue"]
    assert status == (1 if expected.startswith("FAIL") else 0)


@sqlite_only
def test_a_rules_file_broken_since_the_start_fails(make_app, tmp_path):
    rules = tmp_path / "rules.toml"
    rules.write_text('[[rules]]\nname = "hi"\npattern = "hello"\ntext = "Hi!"\n')
    app = make_app(RESPONDER_RULES=str(rules))
    rules.write_text('[[rules]]\nname = "x"\npattern = "("\ntext = "hi"\n')
    status, lines = doctor(app)
    assert status == 1 and lines["rules"].startswith("FAIL rules: the file as it is now")
    assert "a restart will fail" in lines["rules"] and "rules check" in lines["rules"]
