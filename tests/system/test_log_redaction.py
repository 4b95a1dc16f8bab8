"""No log line of a real server shows a token: ADMIN_TOKEN or a wrong one an operator
typed, sent in a query string (`?token=...`), an Authorization header (Bearer or Basic),
a Referer, a login form, or a request gunicorn refuses as malformed.

Before app/server/logger.py, gunicorn's access log showed every request line whole, so
`GET /api/stats?token=<ADMIN_TOKEN>` put the token in the log although the request was
refused (and the dashboard's redirect to its login page put it there a second time).
"""

from __future__ import annotations

import base64
import re
import socket

import pytest
import requests

from tests.support.servers import gunicorn
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

TOKEN = "admin-token-in-a-url-0123456789abcdef"
WRONG = "an-old-token-typed-by-mistake-4242"
SECRETS = {TOKEN: "ADMIN_TOKEN", WRONG: "a wrong token", AUTH_TOKEN: "the Auth Token",
           base64.b64encode(f"{TOKEN}:x".encode()).decode(): "Basic credentials"}


def basic(user: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:x".encode()).decode()


def raw(server, request: bytes) -> bytes:
    port = int(server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=20) as sock:
        sock.sendall(request)
        return sock.recv(65536)


@pytest.mark.parametrize("log_format", ["text", "json"])
def test_no_token_in_any_log_line(tmp_path, fake_api, log_format):
    """Every kind of request that carries a token, answered; then the whole log (app
    and gunicorn, debug level) is searched for each token."""
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
           "ADMIN_TOKEN": TOKEN, "LOG_LEVEL": "DEBUG", "LOG_FORMAT": log_format}
    with gunicorn(env, tmp_path / "server.log", workers=1,
                  args=["--log-level", "debug"]) as server:
        base = server.url
        for token in (TOKEN, WRONG):
            for path in ("/api/stats", "/metrics", "/admin/", "/admin/failures", "/healthz",
                         "/nowhere"):
                requests.get(f"{base}{path}?token={token}&since=24h", timeout=10)
            for header in (f"Bearer {token}", basic(token), token):
                for path in ("/api/stats", "/metrics"):
                    requests.get(base + path, headers={"Authorization": header}, timeout=10)
            requests.get(base + "/healthz", timeout=10,
                         headers={"Referer": f"http://localhost/admin/?token={token}"})
            # A webhook with a token in its URL and a signature for another one (403):
            # the rejection's line names the URL it checked.
            params = message_added()
            url = f"http://localhost/webhooks/conversations?token={token}"
            assert requests.post(base + "/webhooks/conversations?token=" + token,
                                 data=params, timeout=10, headers={
                                     "X-Twilio-Signature": sign(params, url + "x")}
                                 ).status_code == 403
            session = requests.Session()
            page = session.get(base + "/admin/login", timeout=10).text
            csrf = re.search(r'name="csrf" value="([^"]+)"', page).group(1)
            session.post(base + "/admin/login", data={"token": token, "csrf": csrf},
                         timeout=10)
            # Requests gunicorn refuses, whose warnings quoted the offending line whole.
            for request in (
                    f"GET /api/stats?token={token}\x7f HTTP/1.1\r\nHost: x\r\n\r\n",
                    f"GET /api/stats?a b&token={token} HTTP/1.1\r\nHost: x\r\n\r\n",
                    f"GET /api/stats HTTP/1.1\r\nHost: x\r\nAuthorization Bearer {token}"
                    "\r\n\r\n"):
                assert raw(server, request.encode()).startswith(b"HTTP/1.1 4")
        assert requests.get(base + "/api/stats", timeout=10, headers={
            "Authorization": f"Bearer {TOKEN}"}).status_code == 200
        log = server.log
    found = {what: [line for line in log.splitlines() if secret in line]
             for secret, what in SECRETS.items() if secret in log}
    assert not found
    assert "/api/stats?[redacted]" in log and "Invalid request from ip=" in log
    assert "Traceback" not in log
