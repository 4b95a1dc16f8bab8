"""The VM deployment as shipped in deploy/: the real nginx site in front of gunicorn.

nginx (Debian's, installed when missing) runs deploy/nginx/bot.conf with its placeholders
replaced (name, certificate, ports) and a self-signed certificate, on loopback; gunicorn
runs as docs/deploying.md says for that set-up (PUBLIC_BASE_URL=https://<name>:<port>,
PROXY_COUNT=1, ADMIN_TOKEN for /metrics). Webhooks are signed for the public https URL,
as Twilio signs them. The certificate's bootstrap (deploy/nginx/bootstrap.conf) runs too.
"""

from __future__ import annotations

import re
import secrets
import shutil
import subprocess

import pytest
import requests

from tests.support.fake_conversations import FakeConversationsAPI
from tests.support.nginx import BOOTSTRAP, installed_nginx, nginx
from tests.support.servers import BIN, ROOT, free_port, gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

NAME = "localhost"  # the public name; a certificate is made for it
UNITS = ROOT / "deploy" / "systemd"
ADMIN_TOKEN = "deploy-test-admin-token-0123456789"


@pytest.fixture(scope="module")
def nginx_binary():
    binary, why = installed_nginx()
    if not binary:
        pytest.skip(f"no nginx: {why}")
    return binary


@pytest.fixture(scope="module")
def stack(nginx_binary, tmp_path_factory):
    """gunicorn (SQLite, in-process sender, the fake API) behind the shipped nginx site."""
    folder = tmp_path_factory.mktemp("deploy")
    api = FakeConversationsAPI(ACCOUNT_SID, AUTH_TOKEN, any_conversation=True).start()
    https_port = free_port()
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": api.url, "INSTANCE_DIR": folder / "instance",
        "PUBLIC_BASE_URL": f"https://{NAME}:{https_port}", "PROXY_COUNT": "1",
        "SENDER_POLL_SECONDS": "0.2", "ADMIN_TOKEN": ADMIN_TOKEN,
    }
    try:
        with gunicorn(env, folder / "server.log", workers=2) as server:
            upstream_port = int(server.url.rsplit(":", 1)[1])
            with nginx(nginx_binary, folder / "nginx", name=NAME, upstream_port=upstream_port,
                       https_port=https_port) as proxy:
                yield proxy, server, api
    finally:
        api.stop()


def post(proxy, params, *, signed_for=None, path="/webhooks/conversations", headers=None,
         base=None):
    """POST a webhook to nginx over https, signed for `signed_for` (default: the URL
    Twilio would call, https://<name>:<port><path>)."""
    url = (base or proxy.https_url) + path
    signature = sign(params, signed_for or url)
    return requests.post(url, data=params, timeout=10, verify=str(proxy.cert),
                         allow_redirects=False,
                         headers={"X-Twilio-Signature": signature, **(headers or {})})


def answered(api, params_list) -> bool:
    replied = {c.in_reply_to for c in api.created}
    return all(p["MessageSid"] in replied for p in params_list)


def test_signed_webhooks_through_nginx_are_accepted_and_answered(stack):
    """Signed for the public https URL, passed on by nginx: 200, and each gets a reply."""
    proxy, _, api = stack
    sent = [message_added() for _ in range(5)]
    for params in sent:
        response = post(proxy, params)
        assert response.status_code == 200, response.text
        assert response.headers["X-Webhook-Outcome"].startswith("reply queued")
    wait_for(lambda: answered(api, sent), timeout=20)
    assert requests.get(proxy.https_url + "/healthz", verify=str(proxy.cert),
                        timeout=10).status_code == 200


@pytest.mark.parametrize("signed_for", [
    "http://{name}:{port}/webhooks/conversations",  # the scheme nginx removed
    "https://{name}/webhooks/conversations?x=1",  # another query
    "https://bot.example.org/webhooks/conversations",  # another app's host
    "http://127.0.0.1:5000/webhooks/conversations",  # the URL gunicorn itself sees
])
def test_a_request_signed_for_another_url_is_refused(stack, signed_for):
    """Only the URL Twilio called (the public https one) is accepted."""
    proxy, _, _ = stack
    url = signed_for.format(name=NAME, port=proxy.https_port)
    assert post(proxy, message_added(), signed_for=url).status_code == 403


def test_an_oversized_body_is_stopped_by_nginx(stack):
    """Over client_max_body_size (256 KiB): 413 from nginx, gunicorn never sees it."""
    proxy, server, _ = stack
    marker = secrets.token_hex(8)
    params = {**message_added(), "Body": "x" * (300 * 1024)}
    response = post(proxy, params, path=f"/webhooks/conversations?marker={marker}")
    assert response.status_code == 413
    assert "nginx" in response.text  # nginx's own page, not the app's answer
    # The request just answered is in nginx's log; gunicorn's access log never had it.
    wait_for(lambda: marker in (proxy.folder / "access.log").read_text(), timeout=5)
    assert marker not in server.log


def test_a_body_under_the_limit_passes(stack):
    """A webhook of 200 KiB (under both limits) goes through and is accepted."""
    proxy, _, _ = stack
    params = {**message_added(), "Body": "x" * (200 * 1024)}
    assert post(proxy, params).status_code == 200


@pytest.mark.parametrize("spoof, signed_for", [
    ({"X-Forwarded-Host": "evil.example", "X-Forwarded-Proto": "http",
      "X-Forwarded-Port": "8080"}, "http://evil.example:8080/webhooks/conversations"),
    ({"X-Forwarded-Prefix": "/evil"}, "https://{name}:{port}/evil/webhooks/conversations"),
    ({"X-Forwarded-Host": "127.0.0.1", "X-Forwarded-Proto": "http", "X-Forwarded-Port": "80",
      "X-Forwarded-For": "127.0.0.1"}, "http://127.0.0.1/webhooks/conversations"),
])
def test_forwarded_headers_sent_by_a_client_are_not_trusted(stack, spoof, signed_for):
    """nginx replaces every X-Forwarded-* header the app trusts: a client's own do not
    make a signature for the URL they describe pass, and do not break a genuine one."""
    proxy, _, _ = stack
    url = signed_for.format(name=NAME, port=proxy.https_port)
    assert post(proxy, message_added(), signed_for=url, headers=spoof).status_code == 403
    assert post(proxy, message_added(), headers=spoof).status_code == 200


def test_plain_http_never_redirects_the_webhook_path(stack):
    """http:// on the webhook path is refused (a redirect would lose the POST); other
    paths redirect browsers to https."""
    proxy, _, _ = stack
    response = post(proxy, message_added(), base=proxy.http_url)
    assert response.status_code == 403
    assert "Location" not in response.headers
    other = requests.get(proxy.http_url + "/", timeout=10, allow_redirects=False)
    assert other.status_code == 301
    assert other.headers["Location"].startswith("https://")


def test_only_the_webhooks_health_and_metrics_are_published(stack):
    """Other paths stay on the VM, even with ADMIN_TOKEN set (the app would serve them):
    404 from nginx."""
    proxy, _, _ = stack
    bearer = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
    for path in ("/admin", "/admin/", "/api/stats", "/metrics/x"):
        response = requests.get(proxy.https_url + path, verify=str(proxy.cert), timeout=10,
                                headers=bearer, allow_redirects=False)
        assert response.status_code == 404 and "nginx" in response.text, path


def test_metrics_are_scraped_through_nginx_with_the_admin_token(stack):
    """The README's scrape configuration (https, the host, /metrics, the bearer token)
    gets the app's metrics; without the token the app answers 401."""
    proxy, _, _ = stack
    assert post(proxy, message_added()).status_code == 200
    url = proxy.https_url + "/metrics"
    scraped = requests.get(url, verify=str(proxy.cert), timeout=10,
                           headers={"Authorization": f"Bearer {ADMIN_TOKEN}"})
    assert scraped.status_code == 200, scraped.text
    assert "bot_webhooks_total" in scraped.text
    assert requests.get(url, verify=str(proxy.cert), timeout=10).status_code == 401


def test_nginx_gives_each_request_its_id(stack):
    """nginx's $request_id reaches the app as X-Request-Id (a client's own is replaced):
    it comes back in the response and is on the app's line about the webhook."""
    proxy, server, _ = stack
    params = message_added()
    response = post(proxy, params, headers={"X-Request-Id": "chosen-by-the-client"})
    assert response.status_code == 200
    request_id = response.headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", request_id), request_id
    wait_for(lambda: re.search(rf"event=onMessageAdded .*{params['MessageSid']}.*"
                               rf"request_id={request_id}", server.log), timeout=10)
    assert "chosen-by-the-client" not in server.log


def test_the_certificate_bootstrap_then_the_site_answer_certbots_challenge(nginx_binary,
                                                                          tmp_path, stack):
    """On a fresh VM: bootstrap.conf runs without any certificate and serves certbot's
    HTTP-01 challenge from the webroot (nothing else); bot.conf serves the renewals'
    challenges from the same webroot over plain HTTP."""
    token = secrets.token_urlsafe(16)
    challenge = f"/.well-known/acme-challenge/{token}"
    with nginx(nginx_binary, tmp_path / "bootstrap", name=NAME, site=BOOTSTRAP) as first:
        (first.folder / "webroot" / ".well-known" / "acme-challenge").mkdir(parents=True)
        (first.folder / "webroot" / challenge.lstrip("/")).write_text(f"{token}.key")
        answer = requests.get(first.http_url + challenge, timeout=10)
        assert (answer.status_code, answer.text) == (200, f"{token}.key")
        assert requests.get(first.http_url + "/", timeout=10).status_code == 404
    proxy, _, _ = stack
    (proxy.folder / "webroot" / ".well-known" / "acme-challenge").mkdir(parents=True,
                                                                        exist_ok=True)
    (proxy.folder / "webroot" / challenge.lstrip("/")).write_text(f"{token}.renewal")
    renewal = requests.get(proxy.http_url + challenge, timeout=10, allow_redirects=False)
    assert (renewal.status_code, renewal.text) == (200, f"{token}.renewal")


# -- systemd units ---------------------------------------------------------------------

HARDENING = {"NoNewPrivileges": "yes", "ProtectSystem": "strict",
             "ReadWritePaths": "/srv/bot/instance", "User": "bot", "Restart": "on-failure",
             "EnvironmentFile": "/srv/bot/.env", "WorkingDirectory": "/srv/bot",
             "PrivateTmp": "yes", "KillSignal": "SIGTERM"}


def unit_settings(path) -> dict[str, str]:
    return dict(re.findall(r"^(\w+)=(.*)$", path.read_text(), flags=re.M))


@pytest.mark.parametrize("unit, command", [
    ("bot-web.service", "/srv/bot/.venv/bin/gunicorn wsgi:app"),
    ("bot-sender.service", "/srv/bot/.venv/bin/flask --app wsgi sender"),
])
def test_units_are_hardened_and_run_the_procfile_commands(unit, command):
    """Each unit runs its Procfile command as the dedicated user, hardened, writing only
    the instance folder, restarted on failure, stopped after the 25 s grace period."""
    settings = unit_settings(UNITS / unit)
    assert settings["ExecStart"] == command
    for key, value in HARDENING.items():
        assert settings.get(key) == value, key
    assert int(settings["TimeoutStopSec"]) > 25  # gunicorn's graceful_timeout


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed")
def test_units_pass_systemd_analyze_verify(tmp_path):
    """systemd itself finds no unknown key or bad value (paths pointed at this checkout)."""
    for unit in UNITS.glob("*.service"):
        # The programs of the virtualenv running the tests, wherever it is.
        text = (unit.read_text().replace("/srv/bot/.venv/bin", str(BIN))
                .replace("/srv/bot", str(ROOT)).replace("/bin/kill", shutil.which("kill")))
        (tmp_path / unit.name).write_text(text)
    result = subprocess.run(["systemd-analyze", "verify",
                             *map(str, sorted(tmp_path.glob("*.service")))],
                            capture_output=True, text=True, timeout=60)
    problems = [line for line in result.stderr.splitlines() if str(tmp_path) in line]
    assert result.returncode == 0 and not problems, result.stderr
