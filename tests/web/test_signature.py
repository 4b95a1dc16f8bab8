"""X-Twilio-Signature: accepted exactly when Twilio's algorithm says the URL and params match."""

import logging

import pytest
from werkzeug.datastructures import MultiDict

from app.services import services
from tests.conftest import AUTH_TOKEN, form_body, message_added, post_event, sign

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
    assert sender.run_until_idle() == 0
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
FORWARDED = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "bot.example.com"}


@pytest.mark.parametrize("settings, headers, signed_url, expected", [
    # Behind one proxy (Heroku, ngrok, nginx): the forwarded scheme and host count.
    ({"PROXY_COUNT": 1}, FORWARDED, PUBLIC + PATH, 200),
    ({"PROXY_COUNT": 1}, {**FORWARDED, "X-Forwarded-Port": "443"}, PUBLIC + PATH, 200),
    ({"PROXY_COUNT": 1}, FORWARDED, PUBLIC + ":443" + PATH, 200),
    ({"PROXY_COUNT": 1}, FORWARDED, "http://localhost" + PATH, 403),
    # Without PROXY_COUNT, forwarded headers are not trusted (anyone can send them).
    ({"PROXY_COUNT": 0}, FORWARDED, PUBLIC + PATH, 403),
    ({"PROXY_COUNT": 0}, FORWARDED, "http://localhost" + PATH, 200),
    # PUBLIC_BASE_URL wins over whatever the request says.
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, PUBLIC + PATH, 200),
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, PUBLIC + ":443" + PATH, 200),
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, "http://localhost" + PATH, 403),
    ({"PUBLIC_BASE_URL": PUBLIC + ":8443"}, {}, PUBLIC + ":8443" + PATH, 200),
    ({"PUBLIC_BASE_URL": PUBLIC}, {}, "https://other.example.com" + PATH, 403),
    # A prefix added by the proxy is part of the URL Twilio called.
    ({"PROXY_COUNT": 1}, {**FORWARDED, "X-Forwarded-Prefix": "/bot"},
     PUBLIC + "/bot" + PATH, 200),
])
def test_which_url_is_checked(make_app, settings, headers, signed_url, expected):
    """The URL checked follows PUBLIC_BASE_URL, else the request after PROXY_COUNT proxies."""
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
