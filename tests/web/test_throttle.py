"""Wrong ADMIN_TOKENs are throttled per client address and overall, counted in the
database: at the dashboard's login, the API and /metrics alike, across instances."""

import logging
from datetime import timedelta

import pytest
from sqlalchemy import select, update

from app.services import services
from app.store.models import AuthFailure, utcnow
from app.web import throttle
from tests.support.dashboard import ORIGIN, csrf

TOKEN = "throttle-test-admin-token-0123456789abcdef"
WRONG = "wrong-" * 6


@pytest.fixture
def admin_app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN)


def from_(address: str) -> dict:
    return {"environ_base": {"REMOTE_ADDR": address}}


def bearer(client, token, address="127.0.0.2", path="/api/queue", **kwargs):
    return client.get(path, headers={"Authorization": f"Bearer {token}"},
                      **from_(address), **kwargs)


def log_in(client, token, address="127.0.0.2"):
    form = {"token": token, "csrf": csrf(client)}
    return client.post("/admin/login", data=form, base_url=ORIGIN, **from_(address))


def lockouts(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records
            if r.levelno == logging.WARNING and "locked out" in r.getMessage()]


def test_wrong_logins_from_one_address_are_throttled(admin_app, caplog):
    """Ten wrong tokens get 401; the next tries get 429 with Retry-After, the right token
    included; another address still logs in. One WARNING says so, without the token."""
    caplog.set_level(logging.INFO)
    client = admin_app.test_client()
    assert [log_in(client, WRONG).status_code for _ in range(10)] == [401] * 10
    refused = log_in(client, WRONG)
    assert refused.status_code == 429 and "text/html" in refused.content_type
    assert 0 < int(refused.headers["Retry-After"]) <= 300
    assert "too many wrong tokens" in refused.get_data(as_text=True)
    assert log_in(client, TOKEN).status_code == 429
    assert log_in(admin_app.test_client(), TOKEN, "127.0.0.3").status_code == 302
    [line] = lockouts(caplog)
    assert "127.0.0.2" in line and "failures=10" in line
    logged = " ".join(r.getMessage() for r in caplog.records)
    assert WRONG not in logged and TOKEN not in logged


def test_api_metrics_and_login_share_one_count(admin_app):
    """Wrong bearer tokens at /api/ and /metrics and wrong logins add up; once locked
    out, each door answers 429 its own way (JSON, text, a page)."""
    client = admin_app.test_client()
    assert {bearer(client, WRONG).status_code for _ in range(4)} == {401}
    assert {bearer(client, WRONG, path="/metrics").status_code for _ in range(3)} == {401}
    assert {log_in(client, WRONG).status_code for _ in range(3)} == {401}
    api = bearer(client, TOKEN)
    assert api.status_code == 429 and api.get_json()["status"] == 429
    assert int(api.headers["Retry-After"]) > 0
    metrics = bearer(client, TOKEN, path="/metrics")
    assert metrics.status_code == 429 and metrics.content_type.startswith("text/plain")
    assert log_in(client, TOKEN).status_code == 429


def test_the_right_token_is_never_counted(admin_app):
    """Nine wrong tokens, then many right ones (nothing written), then the tenth wrong
    one is still a 401: a request without a token is not a guess either."""
    client = admin_app.test_client()
    for _ in range(9):
        bearer(client, WRONG)
    before = stored(admin_app)
    assert {bearer(client, TOKEN).status_code for _ in range(30)} == {200}
    assert {client.get("/api/queue", **from_("127.0.0.2")).status_code
            for _ in range(30)} == {401}
    assert stored(admin_app) == before
    assert bearer(client, WRONG).status_code == 401
    assert bearer(client, WRONG).status_code == 429


def stored(app) -> list:
    with services(app).db.read() as conn:
        return sorted(tuple(row) for row in conn.execute(
            select(AuthFailure.key, AuthFailure.failures)))


def test_past_the_overall_limit_each_address_gets_one_try(admin_app, caplog):
    """Spread over many addresses, wrong tokens past the overall limit leave each
    address one wrong try; an address that never failed still gets in."""
    caplog.set_level(logging.WARNING)
    client = admin_app.test_client()
    addresses = [f"127.0.{i // 200 + 1}.{i % 200 + 1}" for i in range(throttle.OVERALL + 1)]
    assert {bearer(client, WRONG, a).status_code for a in addresses[:-1]} == {401}
    newcomer = addresses[-1]
    assert bearer(client, WRONG, newcomer).status_code == 401
    assert bearer(client, WRONG, newcomer).status_code == 429
    assert bearer(client, TOKEN, addresses[0]).status_code == 429
    assert bearer(client, TOKEN, "127.0.9.9").status_code == 200
    assert log_in(client, TOKEN, "127.0.9.8").status_code == 302
    [line] = lockouts(caplog)
    assert f"failures={throttle.OVERALL}" in line and "everyone" in line


def test_the_count_is_shared_by_instances(admin_app, make_app):
    """Two instances on one database: their wrong tokens add up."""
    other = make_app(ADMIN_TOKEN=TOKEN)
    one, two = admin_app.test_client(), other.test_client()
    for i in range(10):
        assert bearer(one if i % 2 else two, WRONG).status_code == 401
    assert bearer(one, TOKEN).status_code == 429
    assert bearer(two, TOKEN).status_code == 429


def test_the_address_is_the_one_behind_the_proxy(make_app):
    """With PROXY_COUNT=1 the address is X-Forwarded-For's, not the proxy's."""
    app = make_app(ADMIN_TOKEN=TOKEN, PROXY_COUNT=1)
    client = app.test_client()

    def via_proxy(token, client_address):
        return client.get("/api/queue", headers={"X-Forwarded-For": client_address,
                                                 "Authorization": f"Bearer {token}"})

    assert {via_proxy(WRONG, "198.51.100.7").status_code for _ in range(10)} == {401}
    assert via_proxy(TOKEN, "198.51.100.7").status_code == 429
    assert via_proxy(TOKEN, "198.51.100.8").status_code == 200


@pytest.mark.parametrize("address, key", [
    ("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64"),
    ("::ffff:192.0.2.1", "192.0.2.1"),
    ("192.0.2.1", "192.0.2.1"),
    ("", "unknown"),
    (None, "unknown"),
])
def test_client_key(address, key):
    """An IPv6 client counts by its /64 (one host has them all)."""
    assert throttle.client_key(address) == key


def test_a_lockout_ends_after_the_period(admin_app):
    """Five minutes after an address's first wrong token its count starts again; old
    rows are pruned when the overall count starts again."""
    client = admin_app.test_client()
    for _ in range(11):
        bearer(client, WRONG)
    assert bearer(client, TOKEN).status_code == 429
    bearer(client, WRONG, "127.0.0.9")
    with services(admin_app).db.transaction() as conn:
        conn.execute(update(AuthFailure).where(AuthFailure.key != "127.0.0.9").values(
            first_at=utcnow() - timedelta(seconds=throttle.PERIOD_SECONDS + 1)))
    assert bearer(client, TOKEN).status_code == 200
    assert bearer(client, WRONG).status_code == 401
    assert stored(admin_app) == [("*", 1), ("127.0.0.2", 1), ("127.0.0.9", 1)]
    with services(admin_app).db.transaction() as conn:
        conn.execute(update(AuthFailure).values(
            first_at=utcnow() - timedelta(seconds=throttle.PERIOD_SECONDS + 1)))
    assert bearer(client, WRONG, "127.0.0.3").status_code == 401
    assert stored(admin_app) == [("*", 1), ("127.0.0.3", 1)]
