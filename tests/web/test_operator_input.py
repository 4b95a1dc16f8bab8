"""Operator input: every parameter of every dashboard page and API call that reaches a
query, a redirect or a header is checked first. A bad one is a 400 that names it (JSON
from the API, a page from the dashboard), never a 500, and nothing is done."""

import pytest

from app.services import services
from tests.support.dashboard import ORIGIN, csrf, get, login

TOKEN = "operator-input-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CH = "CH" + "0" * 32
HUGE = "99999999999999999999"  # past SQLite's 64-bit INTEGER
FAR = "99999999999d"  # past what a datetime can hold
EARLY = "0001-01-01T00:00:00%2B01:00"  # year 0 once in UTC
LATE = "9999-12-31T23:59:59-01:00"  # year 10000 once in UTC
CRLF = "/admin/%0D%0ASet-Cookie:%20x=1"


@pytest.fixture
def admin_app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN)


@pytest.fixture
def browser(admin_app):
    client = admin_app.test_client()
    assert login(client, TOKEN).status_code == 302
    return client


API = [
    ("/api/conversations?before=" + FAR, "before"),
    ("/api/conversations?before=" + EARLY, "before"),
    ("/api/conversations?before=tomorrow", "before"),
    ("/api/conversations?limit=%C2%B2", "limit"),  # '²' is a digit to str.isdigit()
    ("/api/conversations?limit=" + "9" * 5000, "limit"),
    (f"/api/conversations/{CH}/timeline?before={LATE}", "before"),
    (f"/api/conversations/{CH}/timeline?limit=-1", "limit"),
    ("/api/conversations?limit=0", "limit"),  # was the first row alone
    ("/api/conversations?limit=000", "limit"),
    ("/api/conversations/" + "C" * 65 + "/timeline", "conversation SID"),
    ("/api/conversations/CH%0D%0Ax/timeline", "conversation SID"),
    ("/api/conversations/CH%00/timeline", "conversation SID"),
    ("/api/replies?since=" + FAR, "since"),
    ("/api/replies?until=" + FAR, "until"),
    ("/api/replies?since=" + EARLY, "since"),
    ("/api/replies?until=" + LATE, "until"),
    ("/api/replies?before_id=" + HUGE, "before_id"),
    ("/api/replies?before_id=%C2%B2", "before_id"),
    ("/api/replies?before_id=-1", "before_id"),
    ("/api/replies?status=lost", "status"),
    ("/api/replies?delivery=lost", "delivery"),
    ("/api/failures?since=" + FAR, "since"),
    ("/api/failures?limit=x", "limit"),
    ("/api/stats?since=" + FAR, "since"),
    ("/api/stats?until=" + LATE, "until"),
]


@pytest.mark.parametrize("path, name", API)
def test_api_refuses_bad_input_with_a_json_400(admin_app, path, name):
    """The API answers 400 in JSON, naming the parameter."""
    response = admin_app.test_client().get(path, headers=AUTH)
    assert response.status_code == 400, response.get_data(as_text=True)
    body = response.get_json()
    assert body["status"] == 400 and name in body["error"]


@pytest.mark.parametrize("reply_id", [HUGE, "0"])
def test_api_requeue_refuses_an_impossible_id(admin_app, reply_id):
    response = admin_app.test_client().post(f"/api/replies/{reply_id}/requeue", headers=AUTH)
    assert response.status_code == 400
    assert "reply id" in response.get_json()["error"]


DASHBOARD = [
    ("/admin/?before=" + FAR, "before"),
    ("/admin/?before=" + EARLY, "before"),
    ("/admin/?before=tomorrow", "before"),
    (f"/admin/conversations/{CH}?before={LATE}", "before"),
    ("/admin/conversations/" + "C" * 65, "conversation SID"),
    ("/admin/conversations/CH%0D%0Ax", "conversation SID"),
    ("/admin/failures?since=" + FAR, "since"),
    ("/admin/failures?since=" + EARLY, "since"),
    ("/admin/failures?since=never", "since"),
    ("/admin/replies?before_id=" + HUGE, "before_id"),
    ("/admin/replies?before_id=%C2%B2", "before_id"),
    ("/admin/replies?status=lost", "status"),
    ("/admin/replies?delivery=lost", "delivery"),
    ("/admin/login?next=" + CRLF, "next"),
    ("/admin/login?next=//evil.example/admin", "next"),
    ("/admin/login?next=https://evil.example/", "next"),
]


@pytest.mark.parametrize("path, name", DASHBOARD)
def test_dashboard_refuses_bad_input_with_a_400_page(browser, path, name):
    """The dashboard answers 400 with a page that says which parameter was wrong."""
    response = get(browser, path)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert "text/html" in response.content_type
    assert name in response.get_data(as_text=True)


@pytest.mark.parametrize("path, form, name", [
    (f"/admin/replies/{HUGE}/requeue", {"back": "/admin/failures"}, "reply id"),
    ("/admin/replies/0/requeue", {"back": "/admin/failures"}, "reply id"),
    ("/admin/replies/1/requeue", {"back": "/admin/failures\r\nSet-Cookie: x=1"}, "back"),
    ("/admin/replies/1/requeue", {"back": "https://evil.example/"}, "back"),
    ("/admin/autoreply", {"value": "maybe"}, "value"),
])
def test_dashboard_forms_refuse_bad_input_and_do_nothing(admin_app, browser, path, form,
                                                         name):
    """A form with a bad field is a 400 page; the switch and the queue stay as they were."""
    token = csrf(browser, "/admin/")
    response = browser.post(path, data={"csrf": token, **form}, base_url=ORIGIN)
    assert response.status_code == 400, response.get_data(as_text=True)
    assert name in response.get_data(as_text=True)
    assert services(admin_app).processor.state.autoreply_switch() is None


def test_login_with_a_bad_next_is_refused_before_the_token_is_tried(admin_app):
    """A CRLF in `next` is a 400, even with the right token, and logs nobody in."""
    client = admin_app.test_client()
    token = csrf(client)
    response = client.post("/admin/login?next=" + CRLF, data={"token": TOKEN, "csrf": token},
                           base_url=ORIGIN)
    assert response.status_code == 400 and "next" in response.get_data(as_text=True)
    assert get(client, "/admin/").status_code == 302


def test_the_login_sends_you_back_where_you_were(admin_app):
    """An odd but harmless page (spaces, non-ASCII, a query) survives the login's round
    trip, percent-encoded."""
    client = admin_app.test_client()
    page = get(client, "/admin/replies?status=failed&x=a%20b")
    target = page.headers["Location"]
    token = csrf(client)
    response = client.post(target, data={"token": TOKEN, "csrf": token}, base_url=ORIGIN)
    assert response.status_code == 302
    assert response.headers["Location"] == "/admin/replies?status=failed&x=a%20b"


@pytest.mark.parametrize("field, value", [("status", "sent"), ("delivery", "sent"),
                                          ("delivery", "problem")])
def test_the_api_and_the_dashboard_filter_replies_by_the_same_words(admin_app, browser,
                                                                   field, value):
    """Each filter the API takes, the dashboard takes too (and offers), and the other way
    round: `delivery=sent` (a receipt that says sent) is one."""
    from app.timeline import replies

    assert value in {"status": replies.STATUSES, "delivery": replies.DELIVERIES}[field]
    api = admin_app.test_client().get(f"/api/replies?{field}={value}", headers=AUTH)
    assert api.status_code == 200, api.get_data(as_text=True)
    page = get(browser, f"/admin/replies?{field}={value}")
    assert page.status_code == 200, page.get_data(as_text=True)
    assert f'<option value="{value}" selected>' in page.get_data(as_text=True)
