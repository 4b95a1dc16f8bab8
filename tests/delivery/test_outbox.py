"""Outbox: one reply per message, whatever happened to the event that asked for it."""

from sqlalchemy import delete, select

from app.services import services
from app.store.models import ProcessedEvent, Reply
from tests.conftest import message_added, post_event


def test_replay_after_retention_keeps_the_one_failed_reply(app, client, sender, fake_api):
    """Retention pruned the event but kept its failed reply: a replay is a 200, nothing resent."""
    fake_api.fail(1, status=400, code=21610)
    params = message_added()
    post_event(client, params)
    sender.run_until_idle()
    with services(app).db.session() as s:
        s.execute(delete(ProcessedEvent))  # as retention does; failed replies stay

    response = post_event(client, params)
    assert response.status_code == 200
    assert ("a reply to this message exists already (failed): not queued again"
            in response.headers["X-Webhook-Outcome"])
    with services(app).db.session() as s:
        assert s.scalars(select(Reply.status)).all() == ["failed"]
    assert sender.run_until_idle() == 0
    assert fake_api.created == [] and len(fake_api.requests) == 1
