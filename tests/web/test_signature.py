"""X-Twilio-Signature: accepted exactly when Twilio's algorithm says the URL and params match."""

import logging

import pytest
from twilio.request_validator import RequestValidator
from werkzeug.datastructures import MultiDict

from app.services import services
from app.web import signature as signature_module
from app.web import webhooks
from tests.support.sending import run_until_idle
from tests.support.webhooks import AUTH_TOKEN, form_body, message_added, post_event, sign

PATH = "/webhooks/conversations"


def test_valid_signature_is_accepted(client):
    """A request signed with the Auth Token over the URL it was sent to gets 200."""
    assert post_event(client, message_added()).status_code == 200


@pytest.mark.parametrize("case", ["missing", "empty", "wrong token", "tampered", "garbage"])
def test_bad_signatures_are_rejected_with_403(client, sender, fake_api, case):
    """Fail closed: anything but a matching signature is 403 and has no effect."""
    params = message_added()
    headers = {}
    if case == "missing":
        headers = {"X-Twilio-Signature": ""}
    elif case == "empty":
        headers = {"X-Twilio-Signature": " "}
    elif case == "wrong token":
        headers = {"X-Twilio-Signature": sign(params, token="f" * 32)}
    elif case == "garbage":
        headers = {"X-Twilio-Signature": "not base64 at all!!"}
    if case == "tampered":
        signature = sign(params)
        params = {**params, "Body": "give me a refund"}
        headers = {"X-Twilio-Signature": signature}
    response = post_event(client, params, headers=headers)
    assert response.status_code == 403
    assert run_until_idle(sender) == 0
    assert fake_api.created == []


def test_missing_header_entirely_is_403(client):
    """No X-Twilio-Signature header at all is 403, not a 500."""
    params = message_added()
    response = client.post(PATH, data=params)
    assert response.status_code == 403
    assert b"missing X-Twilio-Signature" in response.data


def test_repeated_keys_all_count(client):
    """Every value of a repeated parameter is signed; dropping one breaks the signature."""
    params = MultiDict(message_added())
    params.add("Media", "one")
    params.add("Media", "two")
    headers = {"Content-Type": "application/x-www-form-urlencoded"}
    good = sign(params, "http://localhost" + PATH)
    only_first = sign({**params.to_dict(), "Media": "one"}, "http://localhost" + PATH)
    ok = client.post(PATH, data=form_body(params), headers={**headers, "X-Twilio-Signature": good})
    bad = client.post(PATH, data=form_body(params),
                      headers={**headers, "X-Twilio-Signature": only_first})
    assert (ok.status_code, bad.status_code) == (200, 403)


def test_raw_query_string_is_signed_as_sent(client):
    """The query string counts exactly as Twilio sent it, percent-encoding included."""
    path = PATH + "?team=first%20line&x=a%2Fb"
    response = post_event(client, message_added(), path=path, url="http://localhost" + path)
    assert response.status_code == 200


def test_trailing_slash_is_served_not_redirected(client):
    """A webhook URL configured with a trailing slash works (a redirect would lose the POST)."""
    response = post_event(client, message_added(), path=PATH + "/",
                          url="http://localhost" + PATH + "/")
    assert response.status_code == 200


PUBLIC = "https://bot.example.com"
PUBLIC_AND_OTHER = PUBLIC + ",https://other.example.org"
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.com"}
LOCAL_TLS = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "localhost:8443"}


@pytest.mark.parametrize("settings, headers, signed_url, expected", [
    # Behind one proxy (Heroku, ngrok, nginx) ProxyFix gives scheme, host, port and prefix,
    # but the origin they make must be configured (or loopback): forwarded alone is 403.
    ({"PROXY_COUNT": 1}, FORWARDED, PUBLIC + PATH, 403),
    ({"PROXY_COUNT": 1, "PUBLIC_BASE_URL": PUBLIC_AND_OTHER}, FORWARDED, PUBLIC + PATH, 200),
    ({"PROXY_COUNT": 1, "PUBLIC_BASE_URL": PUBLIC_AND_OTHER},
     {**FORWARDED, "X-Forwarded-Port": "443"}, PUBLIC + PATH, 200),
    ({"PROXY_COUNT": 1, "PUBLIC_BASE_URL": PUBLIC_AND_OTHER}, FORWARDED,
     PUBLIC + ":443" + PATH, 200),
    ({"PROXY_COUNT": 1, "PUBLIC_BASE_URL": PUBLIC_AND_OTHER}, FORWARDED,
     "http://localhost" + PATH, 403),
    ({"PROXY_COUNT": 1, "PUBLIC_BASE_URL": PUBLIC_AND_OTHER}, FORWARDED,
     "https://other.example.org" + PATH, 403),
    # ProxyFix's scheme and port count for a loopback origin (a local TLS proxy).
    ({"PROXY_COUNT": 1}, LOCAL_TLS, "https://localhost:8443" + PATH, 200),
    ({"PROXY_COUNT": 1}, LOCAL_TLS, "http://localhost" + PATH, 403),
    # Without PROXY_COUNT, forwarded headers are not trusted (anyone can send them).
    ({"PROXY_COUNT": 0}, FORWARDED, PUBLIC + PATH, 403),
    ({"PROXY_COUNT": 0}, FORWARDED, "http://localhost" + PATH, 200),
    # One PUBLIC_BASE_URL wins over whatever the request says.
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, PUBLIC + PATH, 200),
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, PUBLIC + ":443" + PATH, 200),
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, "http://localhost" + PATH, 403),
    ({"PUBLIC_BASE_URL": PUBLIC + ":8443"}, {}, PUBLIC + ":8443" + PATH, 200),
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, "https://other.example.com" + PATH, 403),
    # A prefix added by the proxy is part of the URL Twilio called.
    ({"PROXY_COUNT": 1, "PUBLIC_BASE_URL": PUBLIC}, {**FORWARDED, "X-Forwarded-Prefix": "/bot"},
     PUBLIC + "/bot" + PATH, 200),
    ({"PROXY_COUNT": 1}, {**LOCAL_TLS, "X-Forwarded-Prefix": "/bot"},
     "https://localhost:8443/bot" + PATH, 200),
])
def test_which_url_is_checked(make_app, settings, headers, signed_url, expected):
    """The URL checked follows PUBLIC_BASE_URL, else a loopback origin after PROXY_COUNT proxies."""
    client = make_app(**settings).test_client()
    response = post_event(client, message_added(), url=signed_url, headers=headers)
    assert response.status_code == expected


def test_rejection_is_logged_with_url_and_hint_never_the_token(make_app, caplog):
    """An operator sees which URL was checked and what would have matched; no secret leaks."""
    client = make_app().test_client()
    caplog.set_level(logging.WARNING)
    response = post_event(client, message_added(), url="https://localhost" + PATH)
    assert response.status_code == 403
    assert AUTH_TOKEN not in response.get_data(as_text=True)
    logged = caplog.text
    assert "url_checked=http://localhost/webhooks/conversations" in logged
    assert "matches https://localhost/webhooks/conversations" in logged
    assert "PUBLIC_BASE_URL" in logged
    assert AUTH_TOKEN not in logged


def test_dry_run_checks_signatures_with_the_development_token(make_app, tmp_path):
    """Without credentials, the dev token (stored in the instance folder) signs and checks."""
    app = make_app(TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="",
                   INSTANCE_DIR=tmp_path / "dry")
    token = (tmp_path / "dry" / "dev-auth-token").read_text().strip()
    assert len(token) == 32 and services(app).settings.dry_run
    client = app.test_client()
    assert post_event(client, message_added(), token=token).status_code == 200
    assert post_event(client, message_added(), token=AUTH_TOKEN).status_code == 403


def test_webhook_signed_for_another_origin_is_refused_whatever_its_host(
        client, sender, fake_api, caplog):
    """Another app's webhook replayed here with its own Host header is 403 and unanswered."""
    other = "http://other-app.example.com" + PATH
    caplog.set_level(logging.WARNING)
    response = post_event(client, message_added(), url=other,
                          headers={"Host": "other-app.example.com"})
    assert response.status_code == 403
    assert run_until_idle(sender) == 0 and fake_api.created == []
    assert "set PUBLIC_BASE_URL=https://other-app.example.com if Twilio calls" in caplog.text


@pytest.mark.parametrize("settings, host", [
    ({"PROXY_COUNT": 0}, "evil.example.com"),
    # ProxyFix decides the origin from X-Forwarded-Host, which must be served too.
    ({"PROXY_COUNT": 1}, "localhost"),
])
def test_forwarded_host_alone_is_never_trusted(make_app, settings, host):
    """X-Forwarded-Host of an unserved origin is 403, with or without PROXY_COUNT."""
    client = make_app(**settings).test_client()
    forwarded = {"Host": host, "X-Forwarded-Proto": "https",
                 "X-Forwarded-Host": "evil.example.com"}
    response = post_event(client, message_added(), url="https://evil.example.com" + PATH,
                          headers=forwarded)
    assert response.status_code == 403


@pytest.mark.parametrize("host", ["localhost", "localhost:5000", "127.0.0.1", "127.0.0.1:8000",
                                  "[::1]", "[::1]:8080", "LocalHost:5000"])
def test_loopback_origins_work_with_no_settings(client, host):
    """Without PUBLIC_BASE_URL, local runs and curl on any loopback origin just work."""
    response = post_event(client, message_added(), url=f"http://{host}{PATH}",
                          headers={"Host": host})
    assert response.status_code == 200


@pytest.mark.parametrize("host", ["localhost.evil.example", "127.0.0.1.nip.io:5000",
                                  "evil.example@localhost", "localhost/evil", ""])
def test_hosts_that_only_look_like_loopback_are_refused(client, host):
    """Only 127.0.0.1, localhost and [::1] themselves are loopback origins."""
    response = post_event(client, message_added(), url=f"http://{host}{PATH}",
                          headers={"Host": host})
    assert response.status_code == 403


TWO = "https://bot.example.com, https://support.example.org:8443"


@pytest.mark.parametrize("host, signed_url, expected", [
    ("bot.example.com", "https://bot.example.com" + PATH, 200),
    ("support.example.org:8443", "https://support.example.org:8443" + PATH, 200),
    # A proxy that rewrites Host: each configured origin is tried in turn.
    ("web-1.internal:8000", "https://support.example.org:8443" + PATH, 200),
    ("web-1.internal:8000", "https://bot.example.com" + PATH, 200),
    # The Host names one origin; a signature for the other does not count for it.
    ("bot.example.com", "https://support.example.org:8443" + PATH, 403),
    ("third.example.net", "https://third.example.net" + PATH, 403),
    ("localhost", "http://localhost" + PATH, 403),
])
def test_several_public_origins(make_app, host, signed_url, expected):
    """PUBLIC_BASE_URL lists origins: a webhook signed for any of them counts, no other."""
    client = make_app(PUBLIC_BASE_URL=TWO).test_client()
    response = post_event(client, message_added(), url=signed_url, headers={"Host": host})
    assert response.status_code == expected


def test_ngrok_style_tunnel_works(make_app):
    """Twilio calls https://x.ngrok-free.app; the request arrives as http with that Host."""
    client = make_app(PUBLIC_BASE_URL="https://x.ngrok-free.app").test_client()
    response = post_event(client, message_added(), url="https://x.ngrok-free.app" + PATH,
                          headers={"Host": "x.ngrok-free.app"})
    assert response.status_code == 200


def counting_validate(monkeypatch, app) -> list:
    """Count the app's signature checks; each still runs the real HMAC."""
    validator = services(app).validator
    real, calls = validator.validate, []

    def validate(*args, **kwargs):
        calls.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(validator, "validate", validate)
    return calls


def test_large_rejected_body_costs_one_signature_check(make_app, monkeypatch, caplog):
    """A large badly signed body is checked once; no hint is computed, and the log says so."""
    app = make_app()
    calls = counting_validate(monkeypatch, app)
    caplog.set_level(logging.WARNING)
    params = MultiDict([("EventType", "onMessageAdded")] + [(f"F{i}", "v" * 8) for i in range(2000)])
    response = post_event(app.test_client(), params, url="https://localhost" + PATH)
    assert response.status_code == 403
    assert len(calls) == 1
    assert "hint=\"skipped:" in caplog.text and "bytes" in caplog.text
    assert "matches https://" not in caplog.text


def test_hints_are_given_at_most_once_per_interval(make_app, monkeypatch, caplog):
    """A burst of small bad requests gets one hint, each other costs one check; later, another."""
    app = make_app()
    calls = counting_validate(monkeypatch, app)
    now = [1000.0]
    monkeypatch.setattr(webhooks.hints(app), "clock", lambda: now[0])
    caplog.set_level(logging.WARNING)
    client = app.test_client()

    def reject() -> int:
        before = len(calls)
        response = post_event(client, message_added(), url="https://localhost" + PATH)
        assert response.status_code == 403
        return len(calls) - before

    assert reject() > 1
    assert (reject(), reject()) == (1, 1)
    assert caplog.text.count("matches https://localhost/webhooks/conversations") == 1
    assert caplog.text.count("hint=\"skipped: one hint per") == 2
    now[0] += webhooks.hints(app).interval
    assert reject() > 1
    assert caplog.text.count("matches https://localhost/webhooks/conversations") == 2


URL_FORMS = ["https://bot.example.com/webhooks/conversations",
             "https://bot.example.com:443/webhooks/conversations",
             "http://localhost/webhooks/conversations?x=1",
             "http://localhost:80/webhooks/conversations",
             "http://127.0.0.1:5000/webhooks/conversations"]


@pytest.mark.parametrize("checked", URL_FORMS)
@pytest.mark.parametrize("signed", URL_FORMS)
def test_validator_answers_as_twilios_with_one_hmac_for_a_good_webhook(
        monkeypatch, checked, signed):
    """The app's Validator accepts exactly what twilio's RequestValidator accepts (the URL
    with and without its default port), computing a second HMAC only on a mismatch."""
    params = message_added()
    signature = sign(params, signed)
    ours, theirs = signature_module.Validator(AUTH_TOKEN), RequestValidator(AUTH_TOKEN)
    hmacs = []
    real = ours.compute_signature
    monkeypatch.setattr(ours, "compute_signature", lambda *a, **k: hmacs.append(a[0]) or real(*a, **k))
    assert ours.validate(checked, params, signature) == theirs.validate(checked, params, signature)
    assert not ours.validate(checked, params, sign(MultiDict({"Body": "forged"}), signed))
    if checked == signed:
        assert hmacs[:1] == [checked] and len(hmacs) == 3  # one for the good, two for the forged
