"""The operator dashboard at /admin: login with the admin token, a session cookie,
CSRF-protected forms, and pages that show what the bot did and let an operator act."""

import logging
import re

import pytest

from app.services import services
from tests.support.dashboard import get, login, post
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event

TOKEN = "t0k3n-for-the-dashboard-0123456789abcdef"


@pytest.fixture
def admin_app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL="https://bot.example.com")


@pytest.fixture
def browser(admin_app):
    """A test client logged in to the dashboard."""
    client = admin_app.test_client()
    login(client, TOKEN)
    return client


def webhook(client, params):
    """A webhook signed for the public URL Twilio calls."""
    return post_event(client, params, url="https://bot.example.com/webhooks/conversations")


def test_pages_need_a_login(admin_app):
    """Every page redirects to the login form; the stylesheet is served without one."""
    client = admin_app.test_client()
    response = get(client, "/admin/failures")
    assert response.status_code == 302 and "/admin/login" in response.headers["Location"]
    css = get(client, "/admin/static/admin.css")
    assert css.status_code == 200 and "text/css" in css.content_type


def test_login_sets_a_safe_session_cookie(admin_app, caplog):
    """The cookie is HttpOnly, SameSite and Secure (the public URL is https); a wrong
    token is refused and logged without the token."""
    caplog.set_level(logging.WARNING)
    client = admin_app.test_client()
    refused = login(client, "not-the-token-at-all")
    assert refused.status_code == 401 and "not the admin token" in refused.get_data(as_text=True)
    assert "not-the-token" not in " ".join(r.getMessage() for r in caplog.records)
    response = login(client, TOKEN)
    assert response.status_code == 302
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie
    assert "Path=/admin" in cookie
    assert get(client, "/admin/").status_code == 200


def test_forms_without_the_csrf_token_are_refused(browser):
    """A cross-site form post (no CSRF token) changes nothing."""
    response = browser.post("/admin/autoreply", data={"value": "off"},
                            base_url="https://bot.example.com")
    assert response.status_code == 400 and "text/html" in response.content_type
    assert "auto-reply" not in response.get_data(as_text=True).lower()
    assert "Turn off" in get(browser, "/admin/").get_data(as_text=True)


@pytest.mark.parametrize("token", ["ü", "\u00ff" * 43, "x\u200b"])
def test_a_csrf_token_with_any_characters_is_refused_not_a_500(browser, token):
    """A non-ASCII token was a TypeError in the comparison: a 500."""
    get(browser, "/admin/")  # the session (and its token) exists
    response = browser.post("/admin/autoreply", data={"value": "off", "csrf": token},
                            base_url="https://bot.example.com")
    assert response.status_code == 400
    assert "Turn off" in get(browser, "/admin/").get_data(as_text=True)


def test_runtime_switch(admin_app, browser):
    """Turning auto-reply off from the dashboard sets the switch every instance obeys."""
    response = post(browser, "/admin/autoreply", value="off")
    assert response.status_code == 302
    page = get(browser, "/admin/").get_data(as_text=True)
    assert "Auto-reply off" in page and "Turn on" in page
    assert services(admin_app).processor.state.autoreply_switch() is False


def test_failures_grouped_by_code_and_requeued(admin_app, browser, fake_api):
    """A reply Twilio refused (30007) shows under its code with meaning and fix; the
    requeue button puts it back in the queue, and the overview's queue shows it."""
    fake_api.fail(1, 400, code=30007)
    webhook(browser, fake_api.message_added())
    run_until_idle(services(admin_app).sender)
    page = get(browser, "/admin/failures").get_data(as_text=True)
    assert "30007" in page and "filtered by the carrier as spam" in page
    assert "Usual fix" in page
    reply_id = re.search(r'data-reply="(\d+)"', page).group(1)
    response = post(browser, f"/admin/replies/{reply_id}/requeue", back="/admin/failures")
    assert response.status_code == 302
    overview = get(browser, "/admin/").get_data(as_text=True)
    assert re.search(r'id="queue-depth">1<', overview)
    assert f"Reply {reply_id} requeued" in overview


def test_timeline_and_chart(admin_app, browser, fake_api):
    """A conversation's page shows the decision, the reply and each participant's
    receipt; the overview draws the hour's delivered and failed replies as SVG."""
    conversation = "CH" + "7" * 32
    webhook(browser, fake_api.message_added(conversation_sid=conversation))
    run_until_idle(services(admin_app).sender)
    sid = fake_api.created[-1].sid
    webhook(browser, delivery_updated(message_sid=sid, conversation_sid=conversation,
                                         status="undelivered", error_code="30003"))
    page = get(browser, f"/admin/conversations/{conversation}").get_data(as_text=True)
    assert "REPLY" in page and sid in page and "undelivered" in page
    assert "unreachable destination handset" in page
    overview = get(browser, "/admin/").get_data(as_text=True)
    assert "<svg" in overview and 'class="failed"' in overview
    assert conversation in overview


def test_replies_table_paginates(admin_app, browser, fake_api):
    for _ in range(27):
        webhook(browser, message_added())
    first = get(browser, "/admin/replies").get_data(as_text=True)
    assert first.count('class="reply"') == 25 and "Older" in first
    older = re.search(r'href="(/admin/replies\?[^"]*before_id=\d+)"', first).group(1)
    second = get(browser, older.replace("&amp;", "&")).get_data(as_text=True)
    assert second.count('class="reply"') == 2 and "Older" not in second
