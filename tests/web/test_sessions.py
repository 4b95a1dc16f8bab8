"""Dashboard sessions are rows in the database, checked on every request: logging out
ends a session for every copy of its cookie on every instance, a new ADMIN_TOKEN ends
them all, and they still expire."""

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.services import services
from app.store.models import AdminSession, utcnow
from app.web.admin import sessions
from tests.support.dashboard import ORIGIN, csrf, get, login

TOKEN = "sessions-test-admin-token-0123456789abcdef"
COOKIE = "bot_admin"
DOMAIN = "bot.example.com"


@pytest.fixture
def admin_app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN)


def logged_in(app):
    client = app.test_client()
    assert login(client, TOKEN).status_code == 302
    return client


def copy_cookie(source, target):
    """What a thief does: the same cookie in another browser."""
    cookie = source.get_cookie(COOKIE, domain=DOMAIN, path="/admin")
    target.set_cookie(COOKIE, cookie.value, domain=DOMAIN, path="/admin", secure=True)
    return target


def session_id(app, client) -> str:
    value = client.get_cookie(COOKIE, domain=DOMAIN, path="/admin").value
    return app.session_interface.get_signing_serializer(app).loads(value)["sid"]


def logout(client):
    return client.post("/admin/logout", data={"csrf": csrf(client, "/admin/")},
                       base_url=ORIGIN)


def test_a_cookie_copied_before_logout_is_refused_after_it(admin_app):
    operator = logged_in(admin_app)
    thief = copy_cookie(operator, admin_app.test_client())
    assert get(thief, "/admin/").status_code == 200
    assert logout(operator).status_code == 302
    refused = get(thief, "/admin/")
    assert refused.status_code == 302 and "/admin/login" in refused.headers["Location"]
    assert get(operator, "/admin/").status_code == 302


def test_logout_on_one_instance_ends_the_session_on_every_instance(admin_app, make_app):
    other = make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN)
    operator = logged_in(admin_app)
    elsewhere = copy_cookie(operator, other.test_client())
    assert get(elsewhere, "/admin/").status_code == 200
    logout(elsewhere)
    assert get(operator, "/admin/").status_code == 302


def test_the_database_never_holds_the_cookies_session_id(admin_app):
    """Only a hash is stored: reading the table does not give a usable cookie."""
    operator = logged_in(admin_app)
    raw = session_id(admin_app, operator)
    with services(admin_app).db.read() as conn:
        rows = conn.execute(select(AdminSession)).all()
    assert len(rows) == 1 and raw not in repr(rows)


def test_a_new_admin_token_ends_every_session(admin_app, make_app):
    """A new token signs cookies with a new key; and even a cookie made with the new
    key for a session started under the old token is refused (its fingerprint)."""
    operator = logged_in(admin_app)
    raw = session_id(admin_app, operator)
    rotated = make_app(ADMIN_TOKEN=TOKEN[::-1], PUBLIC_BASE_URL=ORIGIN)
    assert get(copy_cookie(operator, rotated.test_client()), "/admin/").status_code == 302
    forged = rotated.session_interface.get_signing_serializer(rotated).dumps({"sid": raw})
    client = rotated.test_client()
    client.set_cookie(COOKIE, forged, domain=DOMAIN, path="/admin", secure=True)
    assert get(client, "/admin/").status_code == 302
    assert get(operator, "/admin/").status_code == 200  # the old instance still knows it
    assert not sessions.valid(services(admin_app).db, raw, TOKEN[::-1])


def test_sessions_still_expire(admin_app):
    operator = logged_in(admin_app)
    with services(admin_app).db.transaction() as conn:
        conn.execute(update(AdminSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert get(operator, "/admin/").status_code == 302


def test_a_login_starts_a_new_session_and_prunes_expired_ones(admin_app):
    """Logging in again never reuses a session id (fixation), and the rows of expired
    sessions go."""
    operator = logged_in(admin_app)
    first = session_id(admin_app, operator)
    with services(admin_app).db.transaction() as conn:
        conn.execute(update(AdminSession).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert login(operator, TOKEN).status_code == 302
    assert session_id(admin_app, operator) != first
    with services(admin_app).db.read() as conn:
        assert len(conn.execute(select(AdminSession)).all()) == 1


def test_a_form_posted_after_logout_changes_nothing(admin_app):
    """The copied cookie's form post goes to the login (not back to the form's URL),
    and the switch stays as it was."""
    operator = logged_in(admin_app)
    thief = copy_cookie(operator, admin_app.test_client())
    token = csrf(thief, "/admin/")
    logout(operator)
    response = thief.post("/admin/autoreply", data={"value": "off", "csrf": token},
                          base_url=ORIGIN)
    assert response.status_code == 302 and response.headers["Location"] == "/admin/login"
    assert services(admin_app).processor.state.autoreply_switch() is None
