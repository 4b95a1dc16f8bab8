"""Health: 200 when the app and its database answer, 503 (and no 500s) when the database is gone."""

from tests.support.servers import free_port
from tests.support.webhooks import message_added, post_event


def test_healthy(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json["status"] == "ok" and response.json["database"] == "ok"
    assert response.json["mode"] == "live"


def test_database_down_is_503_for_health_and_webhooks(make_app):
    """With the database unreachable, health says so and webhooks get 503, not 500."""
    url = f"postgresql://postgres@127.0.0.1:{free_port()}/nowhere"
    app = make_app(DATABASE_URL=url, DATABASE_AUTO_UPGRADE="false")
    client = app.test_client()
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json["database"] == "unavailable"
    response = post_event(client, message_added())
    assert response.status_code == 503
    assert b"database unavailable" in response.data
