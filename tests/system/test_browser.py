"""The dashboard in a real browser, as a support lead uses it: Debian's Chromium,
headless, driven by Playwright, against a real gunicorn whose replies really went
through (or failed at) a fake Twilio API, at a desktop's and a phone's width.

The operator's tasks: find a customer by phone number, read the thread, see why the bot
stayed silent, requeue a failed reply and see it go out, spot a dry-run server. Every
page must show the text expected; the test fails on any JavaScript console error,
uncaught exception, dialog (a hostile text that ran), failed or 4xx/5xx request.

Skips (saying why) where Chromium or Playwright is missing; `.ci/run` installs
Chromium with apt. Never downloads a browser. Screenshots go to tests/output/browser/
(git-ignored), one per task and width: look at them.
"""

import json
import shutil
from contextlib import contextmanager
from pathlib import Path

import pytest
import requests

from tests.support.servers import gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, delivery_updated, message_added, sign

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-test-admin-token-0123456789"
OUTPUT = Path(__file__).resolve().parent.parent / "output" / "browser"
DESKTOP = {"width": 1280, "height": 900}
PHONE = {"width": 390, "height": 844}
HOSTILE = "<script>alert('x')</script><img src=x onerror=alert(1)> \"quoted\" & 'more'"
playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (requirements.txt)")
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does)")


def post(server, params, token=AUTH_TOKEN):
    url = server.url + "/webhooks/conversations"
    response = requests.post(url, data=params, timeout=10,
                             headers={"X-Twilio-Signature": sign(params, url, token)})
    assert response.status_code == 200, response.text
    return response


def api(server, path):
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).json()


class Watch:
    """Everything a page does wrong: console errors, uncaught exceptions, dialogs,
    failed or 4xx/5xx requests."""

    def __init__(self, page):
        self.problems = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"exception: {e}"))
        page.on("dialog", lambda d: (self.problems.append(f"dialog: {d.message}"),
                                     d.dismiss()))
        page.on("requestfailed", lambda r: self.problems.append(
            f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"HTTP {r.status}: {r.url}"))


def conversation(n: int) -> str:
    return f"CH{n:032d}"


def customer(n: int) -> str:
    return f"+1555123{n:04d}"


@pytest.fixture
def server(tmp_path, fake_api):
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
           "ADMIN_TOKEN": TOKEN, "AGENT_IDENTITIES": "alice@support",
           "SEND_BACKOFF_SECONDS": "0.2", "SEND_BACKOFF_MAX_SECONDS": "0.5",
           "TWILIO_HTTP_TIMEOUT": "2"}
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        yield server


def say(server, fake_api, n, body, *, author=None, receipts=(), extra=None, answered=True):
    """Customer n writes; wait for the bot's reply at the fake API; post its receipts."""
    before = len(fake_api.created)
    post(server, message_added(conversation_sid=conversation(n), author=author or customer(n),
                               body=body, extra=extra))
    if not answered:
        return None
    wait_for(lambda: len(fake_api.created) == before + 1)
    sid = fake_api.created[-1].sid
    for status, code in receipts:
        post(server, delivery_updated(message_sid=sid, conversation_sid=conversation(n),
                                      status=status, error_code=code))
    return sid


def make_history(server, fake_api):
    """A morning's conversations: answered and read, no receipt yet, a cooldown, an
    agent, an opt-out, a hostile text, a photo not delivered, two replies refused."""
    say(server, fake_api, 1, "Where is my order #1234? It was due Monday.",
        receipts=[("delivered", "0"), ("read", "0")])
    say(server, fake_api, 2, "Hola, ¿abren el domingo?", author="whatsapp:" + customer(2))
    say(server, fake_api, 3, "Can I change my delivery address?",
        receipts=[("delivered", "0")])
    say(server, fake_api, 3, "Also, can you ship to Canada?", answered=False)  # cooldown
    say(server, fake_api, 4, "I need to talk to a person", receipts=[("delivered", "0")])
    say(server, fake_api, 4, "Hi, Alice here: I am looking into it.", author="alice@support",
        answered=False)
    say(server, fake_api, 5, "STOP", answered=False)
    say(server, fake_api, 6, HOSTILE, receipts=[("delivered", "0")])
    media = json.dumps([{"Sid": "ME" + "a" * 32, "ContentType": "image/jpeg",
                         "Filename": "damage.jpg", "Size": 48213}])
    say(server, fake_api, 7, "Photo of the damage", extra={"Media": media},
        receipts=[("undelivered", "30003")])
    say(server, fake_api, 10, "Can I speak to a person about my bill?")  # handed off
    fake_api.fail(2, 400, code=30008)
    for n in (8, 9):
        post(server, message_added(conversation_sid=conversation(n), author=customer(n),
                                   body=f"Is my refund on its way? (customer {n})"))
    wait_for(lambda: len(api(server, "/api/replies?status=failed")["replies"]) == 2)


@contextmanager
def chromium():
    """Debian's Chromium, headless, closed afterwards."""
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            yield browser
        finally:
            browser.close()


def shoot(page, task, viewport):
    page.screenshot(path=OUTPUT / f"{task}-{viewport['width']}.png", full_page=True)


def expect(page, *texts, where="main"):
    shown = page.inner_text(where)
    missing = [t for t in texts if t not in shown]
    assert not missing, f"{page.url} lacks {missing}:\n{shown[:2000]}"


def log_in(page, base):
    page.goto(base + "/admin/")
    assert "/admin/login" in page.url
    page.fill("#token", TOKEN)
    page.click("button[type=submit]")
    page.wait_for_selector("#conversations")


def find(page, text):
    """Type into the search box, as an operator does, and submit."""
    page.fill("#q", text)
    page.press("#q", "Enter")
    page.wait_for_load_state()


def open_conversation(page, address):
    """Click the customer's row in the overview (or the search's results)."""
    page.click(f"table.conversations a:text-is('{address}')")
    page.wait_for_selector(".thread")


def fits(page, viewport):
    assert page.evaluate("document.documentElement.scrollWidth") <= viewport["width"], \
        f"{page.url} scrolls sideways at {viewport['width']} px"


def operator_tasks(page, base, viewport, fake_api, failed_customer):
    log_in(page, base)
    expect(page, "not answered", "answered (delivered)", "silent by decision",
           "answered by an agent", "opted out", "answered (no receipt yet)",
           "waiting for an agent")
    assert page.get_attribute("nav a[aria-current=page]", "href").endswith("/admin/")
    fits(page, viewport)
    shoot(page, "overview", viewport)

    # Who waits for an agent: the customer, and what they last wrote.
    expect(page, "Waiting for an agent (1)", customer(10),
           "Can I speak to a person about my bill?", where="#waiting")
    page.click(f"#waiting a:text-is('{customer(10)}')")
    page.wait_for_selector(".thread")
    expect(page, "Bot handed off to an agent", "waiting for an agent")
    shoot(page, "handed-off", viewport)

    # The FAQ's gaps (no FAQ on this server: the page says how to add one).
    page.click("nav >> text=FAQ gaps")
    expect(page, "What the FAQ did not answer", "No FAQ is loaded")
    fits(page, viewport)

    # Find a customer by phone number, typed as people type it; read the thread.
    find(page, "+1 555 123 0001")
    open_conversation(page, customer(1))
    expect(page, "Where is my order #1234? It was due Monday.", "Bot answered",
           "delivered", "read")
    fits(page, viewport)
    shoot(page, "thread", viewport)

    # Why did the bot stay silent?
    find(page, customer(3)[1:])  # without the +
    open_conversation(page, customer(3))
    expect(page, "Also, can you ship to Canada?",
           "Bot stayed silent: cooldown after our last reply", "COOLDOWN")
    shoot(page, "silent", viewport)

    # A hostile text reads as text, and runs nothing (Watch fails on a dialog).
    find(page, customer(6))
    open_conversation(page, customer(6))
    expect(page, HOSTILE)
    find(page, customer(7))
    open_conversation(page, customer(7))
    expect(page, "1 attachment: image/jpeg", "undelivered", "30003",
           "unreachable destination handset")

    # Failures: what can be requeued comes first.
    page.click("nav >> text=Failures")
    assert page.get_attribute(".failure-group", "id") == "code-30008"
    expect(page, "can be requeued", "Twilio accepted them: no requeue", "Usual fix")
    fits(page, viewport)
    shoot(page, "failures", viewport)

    # Requeue a failed reply from its thread, and see it go out.
    page.goto(base + "/admin/?state=not_answered")
    open_conversation(page, failed_customer)
    expect(page, "failed", "30008", "unknown error")
    page.click("button:has-text('Requeue')")
    page.wait_for_selector(".flash.ok")
    expect(page, "requeued")
    wait_for(lambda: page.reload() and "sent, no receipt yet" in page.inner_text("main"),
             timeout=20, interval=0.3)
    assert any(c.conversation_sid == conversation(int(failed_customer[-1]))
               for c in fake_api.created)
    shoot(page, "requeued", viewport)


def test_operator_tasks_at_desktop_and_phone_widths(server, fake_api):
    make_history(server, fake_api)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        watches = []
        for viewport, failed in ((DESKTOP, customer(8)), (PHONE, customer(9))):
            page = browser.new_context(viewport=viewport).new_page()
            watches.append(Watch(page))
            operator_tasks(page, server.url, viewport, fake_api, failed)
        assert [p for w in watches for p in w.problems] == []
    assert "Traceback" not in server.log


def test_a_dry_run_server_is_unmistakable(tmp_path):
    """No credentials: a banner on every page, the reply reads "dry run (not sent)"."""
    env = {"INSTANCE_DIR": tmp_path / "instance", "ADMIN_TOKEN": TOKEN}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        token = (tmp_path / "instance" / "dev-auth-token").read_text().strip()
        post(server, message_added(conversation_sid=conversation(42), author=customer(42),
                                   body="Do you deliver on Sundays?"), token=token)
        wait_for(lambda: api(server, "/api/replies?outcome=dry_run")["replies"])
        with chromium() as browser:
            for viewport in (DESKTOP, PHONE):
                page = browser.new_context(viewport=viewport).new_page()
                watch = Watch(page)
                log_in(page, server.url)
                expect(page, "Dry run", "nothing is sent to customers", where="#dry-run")
                expect(page, "dry run (not sent)")
                shoot(page, "dry-run-overview", viewport)
                open_conversation(page, customer(42))
                expect(page, "Dry run", where="#dry-run")
                expect(page, "Do you deliver on Sundays?", "dry run (not sent)")
                fits(page, viewport)
                shoot(page, "dry-run-thread", viewport)
                page.click("nav >> text=Replies")
                expect(page, "Dry run", where="#dry-run")
                assert watch.problems == []
        assert "Traceback" not in server.log


def test_an_operator_marks_an_faq_answer_wrong_and_reads_the_gaps(tmp_path, fake_api):
    """With the example rules file: a question answered from the FAQ, one it could not
    answer; in the thread, the match and Mark wrong (then Undo); the FAQ gaps page lists
    both, at a desktop's and a phone's width."""
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
           "ADMIN_TOKEN": TOKEN, "RESPONDER_RULES": "rules.example.toml",
           "AUTO_REPLY_COOLDOWN": "0"}
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        say(server, fake_api, 21, "my card still hasn't arrived, it's been two weeks")
        say(server, fake_api, 22, "Do you sell gift vouchers for birthdays?")
        with chromium() as browser:
            for viewport in (DESKTOP, PHONE):
                page = browser.new_context(viewport=viewport).new_page()
                watch = Watch(page)
                log_in(page, server.url)
                find(page, customer(21))
                open_conversation(page, customer(21))
                expect(page, "Bot answered from the FAQ", "card-delivery", "candidates")
                page.click("button:has-text('Mark wrong')")
                page.wait_for_selector(".flash.ok")
                expect(page, "Marked wrong", "marked wrong")
                fits(page, viewport)
                shoot(page, "faq-marked-wrong", viewport)
                page.click("nav >> text=FAQ gaps")
                expect(page, "Do you sell gift vouchers for birthdays?",
                       "my card still hasn't arrived", "1 marked wrong",
                       "answered wrongly by", "1 declined")
                fits(page, viewport)
                shoot(page, "faq-gaps", viewport)
                page.go_back()
                page.click("button:has-text('Undo')")
                page.wait_for_selector(".flash.ok")
                expect(page, "No longer marked wrong", "Mark wrong")
                assert watch.problems == []
        assert "Traceback" not in server.log
