"""The dashboard in a real browser: Debian's Chromium, headless, driven by Playwright,
against a real gunicorn whose replies really failed at a fake Twilio API.

Skips (saying why) where Chromium or Playwright is missing; `.ci/run` installs
Chromium with apt. Never downloads a browser. Screenshots go to tests/output/browser/
(git-ignored); the test fails on any JavaScript console error or failed request.
"""

import re
import shutil
from pathlib import Path

import pytest
import requests

from tests.support.servers import gunicorn
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, delivery_updated, message_added, sign

CHROMIUM = "/usr/bin/chromium"
TOKEN = "browser-test-admin-token-0123456789"
OUTPUT = Path(__file__).resolve().parent.parent / "output" / "browser"
playwright_api = pytest.importorskip("playwright.sync_api",
                                     reason="playwright is not installed (requirements.txt)")
pytestmark = pytest.mark.skipif(
    shutil.which(CHROMIUM) is None,
    reason=f"{CHROMIUM} is missing: `apt-get install -y chromium` (.ci/run does)")


def post(server, params):
    url = server.url + "/webhooks/conversations"
    response = requests.post(url, data=params, headers={"X-Twilio-Signature": sign(params, url)},
                             timeout=10)
    assert response.status_code == 200, response.text
    return response


def api(server, path):
    return requests.get(server.url + path, headers={"Authorization": f"Bearer {TOKEN}"},
                        timeout=10).json()


class Watch:
    """Everything a page does wrong: console errors, uncaught exceptions, failed or
    4xx/5xx requests (the login page's own 401 for a wrong token is not tried here)."""

    def __init__(self, page):
        self.problems = []
        page.on("console", lambda m: m.type == "error" and self.problems.append(
            f"console: {m.text}"))
        page.on("pageerror", lambda e: self.problems.append(f"exception: {e}"))
        page.on("requestfailed", lambda r: self.problems.append(
            f"failed: {r.url} {r.failure}"))
        page.on("response", lambda r: r.status >= 400 and self.problems.append(
            f"HTTP {r.status}: {r.url}"))


@pytest.fixture
def server(tmp_path, fake_api):
    env = {"TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
           "TWILIO_API_BASE_URL": fake_api.url, "INSTANCE_DIR": tmp_path / "instance",
           "ADMIN_TOKEN": TOKEN, "SEND_BACKOFF_SECONDS": "0.2",
           "SEND_BACKOFF_MAX_SECONDS": "0.5", "TWILIO_HTTP_TIMEOUT": "2"}
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        yield server


def make_history(server, fake_api):
    """Real data: three replies delivered or read, one Twilio refused (30007)."""
    for i in range(3):
        conversation = f"CH{i:032d}"
        post(server, message_added(conversation_sid=conversation))
        wait_for(lambda n=i: len(fake_api.created) == n + 1)
        sid = fake_api.created[-1].sid
        post(server, delivery_updated(message_sid=sid, conversation_sid=conversation,
                                      status="read" if i else "delivered"))
    post(server, message_added(conversation_sid=f"CH{0:032d}"))  # cooldown: silent
    fake_api.fail(1, 400, code=30007)
    post(server, message_added(conversation_sid="CH" + "f" * 32))
    wait_for(lambda: api(server, "/api/replies?status=failed")["replies"])


def test_operator_finds_a_failed_reply_and_requeues_it(server, fake_api):
    make_history(server, fake_api)
    OUTPUT.mkdir(parents=True, exist_ok=True)
    with playwright_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        try:
            context = browser.new_context(viewport={"width": 1280, "height": 1000})
            page = context.new_page()
            watch = Watch(page)
            page.goto(server.url + "/admin/")
            assert "/admin/login" in page.url
            page.fill("#token", TOKEN)
            page.click("button[type=submit]")
            page.wait_for_selector("#queue")
            assert page.text_content("#queue-depth").strip() == "0"
            page.screenshot(path=OUTPUT / "overview.png", full_page=True)

            page.click("text=Failures")
            group = page.locator("#code-30007")
            assert "filtered by the carrier as spam" in group.inner_text()
            assert "Usual fix" in group.inner_text()
            page.screenshot(path=OUTPUT / "failures.png", full_page=True)

            fake_api.stop()  # the requeued reply waits in the queue while Twilio is away
            group.locator("button", has_text="Requeue").click()
            page.wait_for_selector(".flash.ok")
            assert "requeued" in page.text_content(".flash.ok")
            page.click("text=Overview")
            assert page.text_content("#queue-depth").strip() == "1"
            page.screenshot(path=OUTPUT / "queue.png", full_page=True)

            fake_api.start()  # Twilio is back: the reply goes out, the queue empties
            wait_for(lambda: page.reload() and page.text_content("#queue-depth").strip() == "0",
                     timeout=20, interval=0.3)
            assert fake_api.created[-1].conversation_sid == "CH" + "f" * 32

            phone = context.new_page()  # a second tab: the same session, a phone's size
            phone.set_viewport_size({"width": 390, "height": 844})
            phone_watch = Watch(phone)
            phone.goto(server.url + "/admin/conversations/CH" + "f" * 32)
            # Failed once, retried while the API was away, then sent.
            assert re.search(r"sent \d+ attempt", phone.inner_text("main"))
            assert phone.evaluate("document.documentElement.scrollWidth <= 390")
            phone.screenshot(path=OUTPUT / "phone.png", full_page=True)
            assert watch.problems + phone_watch.problems == []
        finally:
            browser.close()
    assert "Traceback" not in server.log
