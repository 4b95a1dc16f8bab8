"""`replies ...` read what the API and the dashboard read (app/timeline/), the same way:
outside the writer's turn."""

import pytest

from app.services import services
from tests.support.sending import run_until_idle
from tests.support.webhooks import message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


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


@pytest.mark.parametrize("reply_id", ["99999999999999999999999", "0", "-3", "x"])
def test_requeue_refuses_an_id_no_reply_can_have(runner, reply_id):
    """Past 64 bits it was an OverflowError on SQLite and "check DATABASE_URL" on
    PostgreSQL; the API answers 400 for the same ids."""
    result = runner.invoke(args=["replies", "requeue", reply_id])
    assert result.exit_code == 2 and "REPLY_ID" in result.output
