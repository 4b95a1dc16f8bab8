"""Security headers: every dashboard response (pages, redirects, errors, its files) may
not be framed, sniffed, cached or leak its URL; the API and /metrics are not sniffed or
cached either."""

import pytest

from tests.support.dashboard import ORIGIN, csrf, get, login

TOKEN = "headers-test-admin-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
DASHBOARD = {
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@pytest.fixture
def admin_app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL=ORIGIN)


def assert_dashboard_headers(response, *, cached=False):
    for name, value in DASHBOARD.items():
        assert response.headers.get(name) == value, (name, response.status_code)
    policy = response.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in policy and "default-src 'none'" in policy
    assert "script-src" not in policy and "unsafe-inline" not in policy
    if not cached:
        assert response.headers["Cache-Control"] == "no-store"


def test_every_kind_of_dashboard_response(admin_app):
    """Login page, redirect, wrong token, a page, a form's redirect, bad input, no such
    page, logout: each carries the headers."""
    client = admin_app.test_client()
    responses = [get(client, "/admin/login"), get(client, "/admin/"),
                 get(client, "/admin/replies"), login(client, "wrong-" * 6)]
    assert [r.status_code for r in responses] == [200, 302, 302, 401]
    responses.append(login(client, TOKEN))
    responses += [get(client, "/admin/"), get(client, "/admin/failures?since=never"),
                  get(client, "/admin/no-such-page")]
    token = csrf(client, "/admin/")
    responses.append(client.post("/admin/autoreply", data={"value": "off", "csrf": token},
                                 base_url=ORIGIN))
    responses.append(client.post("/admin/autoreply", data={"value": "on"}, base_url=ORIGIN))
    responses.append(client.post("/admin/logout", data={"csrf": token}, base_url=ORIGIN))
    assert [r.status_code for r in responses[4:]] == [302, 200, 400, 404, 302, 400, 302]
    for response in responses:
        assert_dashboard_headers(response)


def test_the_dashboards_files_may_be_cached_but_not_sniffed(admin_app):
    css = get(admin_app.test_client(), "/admin/static/admin.css")
    assert css.status_code == 200
    assert_dashboard_headers(css, cached=True)
    assert "no-store" not in css.headers.get("Cache-Control", "")


def test_without_admin_token_the_404_has_them_too(make_app):
    response = make_app().test_client().get("/admin/")
    assert response.status_code == 404
    assert_dashboard_headers(response)


@pytest.mark.parametrize("path, headers, status", [
    ("/api/queue", AUTH, 200),
    ("/api/queue", {}, 401),
    ("/api/replies?status=lost", AUTH, 400),
    ("/api/conversations/CHnothing/timeline", AUTH, 404),
    ("/metrics", AUTH, 200),
    ("/metrics", {}, 401),
])
def test_api_and_metrics_are_not_sniffed_or_cached(admin_app, path, headers, status):
    response = admin_app.test_client().get(path, headers=headers)
    assert response.status_code == status
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Cache-Control"] == "no-store"
    assert "frame-ancestors 'none'" in response.headers["Content-Security-Policy"]


def test_other_paths_are_left_alone(client):
    """Health (and the webhooks) answer machines that read only the status: unchanged."""
    response = client.get("/healthz")
    assert "Content-Security-Policy" not in response.headers
