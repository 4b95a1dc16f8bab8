"""`replies ...` read what the API and the dashboard read (app/timeline/), the same way:
outside the writer's turn."""

import pytest

from app.services import services
from tests.support.sending import run_until_idle
from tests.support.webhooks import message_added, post_event


@pytest.fixture(autouse=True)
def _any_conversation(fake_api):
    """These tests post webhooks of new conversations the fake was not told of (the fake
    answers 404 for those, as Twilio does): every conversation exists here."""
    fake_api.any_conversation = True


def test_replies_failed_answers_while_a_writer_holds_the_database(app, client, runner,
                                                                  sender, fake_api):
    """Listing failed replies is a read: it does not queue behind writers (on SQLite, a
    writer's turn held by this process), as the API's and the dashboard's do not."""
    fake_api.fail(1, 400, code=30007)
    post_event(client, message_added())
    run_until_idle(sender)
    with services(app).db.writer_turn():
        listed = runner.invoke(args=["replies", "failed"])
        stats = runner.invoke(args=["replies", "stats"])
    assert listed.exit_code == 0, listed.output
    assert "code=30007" in listed.output and "filtered by the carrier as spam" in listed.output
    assert stats.output.splitlines()[0] == "failed=1"
