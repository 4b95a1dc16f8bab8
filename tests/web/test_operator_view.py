"""The operator's view of a conversation (issue 20): the thread in the dashboard and
the API, the same meaning of every status in every reader, 400 for bad filters and 404
for what does not exist alike, dry runs that cannot be mistaken for sends, and hostile
texts escaped everywhere they are shown."""

import logging
import re

import pytest

from app.services import services
from app.web import devtoken
from tests.support.dashboard import get, login
from tests.support.sending import run_until_idle
from tests.support.webhooks import delivery_updated, message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


TOKEN = "t0k3n-for-the-operator-view-0123456789ab"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PUBLIC = "https://bot.example.com"
CONVERSATION = "CH" + "a" * 32
HOSTILE = [
    "<script>alert(1)</script>",
    "\"><img src=x onerror=alert(1)>",
    "' onmouseover='alert(1)",
    "line one\nforged=log line\r\nmore",
    "</textarea><svg/onload=alert(1)>&amp;",
]


@pytest.fixture
def bot(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=PUBLIC,
                    AGENT_IDENTITIES="alice@support")


@pytest.fixture
def browser(bot):
    client = bot.test_client()
    login(client, TOKEN)
    return client


def webhook(client, params, **kwargs):
    return post_event(client, params, url=PUBLIC + "/webhooks/conversations", **kwargs)


def page(client, path, status=200):
    response = get(client, path)
    assert response.status_code == status, response.get_data(as_text=True)[:500]
    return response.get_data(as_text=True)


def test_the_thread_shows_the_message_the_decision_and_the_reply(bot, browser, fake_api):
    """What the customer wrote, what the bot decided in plain words (code as a label),
    what it answered, and one delivery state per participant."""
    webhook(browser, message_added(conversation_sid=CONVERSATION, author="+15550001234",
                                   body="Where is my parcel?"))
    run_until_idle(services(bot).sender)
    sid = fake_api.created[-1].sid
    webhook(browser, delivery_updated(message_sid=sid, conversation_sid=CONVERSATION,
                                      status="delivered"))
    webhook(browser, message_added(conversation_sid=CONVERSATION, author="+15550001234",
                                   body="Thanks!"))
    html = page(browser, f"/admin/conversations/{CONVERSATION}")
    first, reply, second = (html.index("Where is my parcel?"),
                            html.index(fake_api.created[-1].body), html.index("Thanks!"))
    assert first < reply < second  # time order
    assert "Bot answered" in html and ">REPLY<" in html
    assert "Bot stayed silent: cooldown after our last reply" in html
    assert ">COOLDOWN<" in html and "delivered" in html
    assert "answered (delivered)" in page(browser, "/admin/")


def test_a_failed_reply_reads_not_answered_in_every_reader(bot, browser, fake_api):
    """Overview, API, Failures, `replies failed` and `replies stats` agree: a reply
    Twilio refused is a failure, and so is one a receipt said undelivered."""
    fake_api.fail(1, 400, code=30008)
    webhook(browser, message_added(conversation_sid=CONVERSATION))
    run_until_idle(services(bot).sender)
    other = "CH" + "b" * 32
    webhook(browser, message_added(conversation_sid=other))
    run_until_idle(services(bot).sender)
    webhook(browser, delivery_updated(message_sid=fake_api.created[-1].sid,
                                      conversation_sid=other, status="undelivered",
                                      error_code="30003"))
    overview = page(browser, "/admin/?state=not_answered")
    assert overview.count('class="conversation"') == 2
    api = bot.test_client()
    states = {c["conversation_sid"]: c["state"] for c in api.get(
        "/api/conversations", headers=AUTH).get_json()["conversations"]}
    assert states == {CONVERSATION: "not_answered", other: "not_answered"}
    went_wrong = api.get("/api/replies?outcome=went_wrong", headers=AUTH).get_json()
    assert sorted(r["outcome"] for r in went_wrong["replies"]) == ["failed", "undelivered"]
    failures = page(browser, "/admin/failures")
    assert failures.index('id="code-30008"') < failures.index('id="code-30003"')
    assert "1 can be requeued" in failures
    runner = bot.test_cli_runner()
    listed = runner.invoke(args=["replies", "failed"]).output
    assert "30008" in listed and "30003" in listed and "no failed replies" not in listed
    assert "failed=1" in runner.invoke(args=["replies", "stats"]).output
    assert "undelivered=1" in runner.invoke(args=["replies", "stats"]).output
    stats = api.get("/api/stats", headers=AUTH).get_json()["replies"]
    assert (stats["failed"], stats["undelivered"]) == (1, 1)


@pytest.mark.parametrize("query, name", [
    ("state=lost", "state must be one of"), ("channel=pigeon", "channel must be one of"),
    ("before=yesterday", "before"), ("q=" + "9" * 300, "q is at most")])
def test_bad_filters_are_400_in_the_dashboard_as_in_the_api(bot, browser, query, name):
    html = page(browser, f"/admin/?{query}", status=400)
    assert name in html
    response = bot.test_client().get(f"/api/conversations?{query}", headers=AUTH)
    assert response.status_code == 400 and name in response.get_json()["error"]


def test_what_does_not_exist_is_404(bot, browser):
    assert "nothing stored for conversation" in page(
        browser, f"/admin/conversations/{CONVERSATION}", status=404)
    api = bot.test_client()
    assert api.get(f"/api/conversations/{CONVERSATION}/timeline",
                   headers=AUTH).status_code == 404
    assert api.post("/api/replies/424242/requeue", headers=AUTH).status_code == 404


def test_a_search_goes_to_the_thread_or_lists_the_customer(bot, browser, fake_api):
    webhook(browser, message_added(conversation_sid=CONVERSATION, author="+15550001234"))
    found = get(browser, "/admin/?q=%2B1+555+000+1234")
    assert found.status_code == 200 and CONVERSATION in found.get_data(as_text=True)
    direct = get(browser, f"/admin/?q={CONVERSATION}")
    assert direct.status_code == 302
    assert direct.headers["Location"].endswith(f"/admin/conversations/{CONVERSATION}")
    assert "No conversation matches" in page(browser, "/admin/?q=%2B15559999999")


def dry_run_app(make_app):
    app = make_app(TWILIO_ACCOUNT_SID="", TWILIO_AUTH_TOKEN="", ADMIN_TOKEN=TOKEN,
                   PUBLIC_BASE_URL=PUBLIC)
    return app, devtoken.load_or_create(services(app).settings.instance_dir)


def test_a_dry_run_is_never_a_send(make_app, fake_api):
    """A banner on every page, the reply reads "dry run (not sent)", `why` says so, the
    counts keep it apart from sent replies, and /metrics counts it under its own name."""
    app, token = dry_run_app(make_app)
    client = app.test_client()
    before = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    message = message_added(conversation_sid=CONVERSATION)
    webhook(client, message, token=token)
    run_until_idle(services(app).sender)
    assert fake_api.created == []
    login(client, TOKEN)
    for path in ("/admin/", f"/admin/conversations/{CONVERSATION}", "/admin/failures",
                 "/admin/replies"):
        assert 'id="dry-run"' in page(client, path)
    assert "dry run (not sent)" in page(client, f"/admin/conversations/{CONVERSATION}")
    assert "dry run (not sent)" in page(client, "/admin/")
    why = app.test_cli_runner().invoke(args=["why", message["MessageSid"]]).output
    assert "dry run (not sent)" in why and "never sent" in why
    stats = client.get("/api/stats", headers=AUTH).get_json()["replies"]
    assert stats["dry_run"] == 1 and stats["sent"] == 0 and stats["delivered"] == 0
    after = client.get("/metrics", headers=AUTH).get_data(as_text=True)
    assert counted(after, "bot_replies_dry_run_total") == counted(
        before, "bot_replies_dry_run_total") + 1
    assert counted(after, "bot_replies_sent_total") == counted(before, "bot_replies_sent_total")


def counted(scrape: str, name: str) -> float:
    found = re.search(rf"^{name} ([0-9.e+]+)$", scrape, re.M)
    return float(found.group(1)) if found else 0.0


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_texts_are_escaped_everywhere(bot, browser, fake_api, caplog, text):
    """A customer's or an agent's text (and address) is data in the HTML, in its
    attributes, in the API's JSON and in the log lines: never markup, never a line."""
    caplog.set_level(logging.INFO)
    webhook(browser, message_added(conversation_sid=CONVERSATION, author=text[:40],
                                   body=text))
    run_until_idle(services(bot).sender)
    webhook(browser, message_added(conversation_sid=CONVERSATION, author="alice@support",
                                   body=text))
    for path in (f"/admin/conversations/{CONVERSATION}", "/admin/",
                 "/admin/?q=" + text[:40].replace("&", "%26").replace("#", "%23"),
                 "/admin/replies"):
        html = get(browser, path).get_data(as_text=True)
        for raw in ("<script>alert", "<img src=x", "<svg/", "onmouseover='"):
            assert raw not in html, (path, raw)
        if path != "/admin/replies":
            assert "&lt;" in html or "&#39;" in html or "&#34;" in html or "\n" in text
    api = bot.test_client()
    events = api.get(f"/api/conversations/{CONVERSATION}/timeline",
                     headers=AUTH).get_json()["events"]
    assert [e["body"] for e in events] == [text, text]  # the JSON gives it back exactly
    assert {e["author"] for e in events} == {text[:40], "alice@support"}
    for record in caplog.records:
        line = record.getMessage()
        assert "\n" not in line and "\r" not in line, line
