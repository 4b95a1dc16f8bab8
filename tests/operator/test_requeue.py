"""Requeue, one action behind three doors: the CLI, the API and the dashboard log it,
wake the sender and refuse in the same words."""

import logging

import pytest
from sqlalchemy import select

from app.services import services
from app.store.models import Reply
from tests.support.dashboard import get, login, post
from tests.support.sending import run_until_idle
from tests.support.waiting import wait_for
from tests.support.webhooks import message_added, post_event

pytestmark = pytest.mark.usefixtures("any_conversation")


TOKEN = "requeue-from-every-door-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}


def a_failed_reply(app, fake_api) -> int:
    """A reply Twilio refused for good (30007); its id."""
    fake_api.fail(1, 400, code=30007)
    public = services(app).settings.web.public_base_urls
    post_event(app.test_client(), message_added(),
               url=public[0] + "/webhooks/conversations" if public else None)
    if not services(app).settings.sender.in_process:  # no sender running: send now
        run_until_idle(services(app).sender)
    wait_for(lambda: statuses(app) == ["failed"])
    return reply_ids(app)[0]


def statuses(app):
    with services(app).db.session() as s:
        return list(s.scalars(select(Reply.status).order_by(Reply.id)))


def reply_ids(app):
    with services(app).db.session() as s:
        return list(s.scalars(select(Reply.id).order_by(Reply.id)))


def requeued_lines(caplog):
    return [r.getMessage() for r in caplog.records if "requeued" in r.getMessage()]


def test_the_cli_requeue_logs_and_wakes_the_sender(make_app, fake_api, caplog):
    """`replies requeue ID` logs who requeued what and wakes this process's sender: the
    reply goes out again at once, not at the sender's next poll (30 s away here)."""
    app = make_app(SENDER_IN_PROCESS="true", SENDER_POLL_SECONDS="30")
    services(app).supervisor.start()
    try:
        reply_id = a_failed_reply(app, fake_api)
        caplog.set_level(logging.INFO, logger="app.operator")
        result = app.test_cli_runner().invoke(args=["replies", "requeue", str(reply_id)])
        assert result.output == "requeued 1 reply\n"
        assert requeued_lines(caplog) == [f"reply requeued reply_id={reply_id} by=cli"]
        wait_for(lambda: statuses(app) == ["sent"], timeout=5)
    finally:
        services(app).supervisor.stop()
    assert len(fake_api.created) == 1


def test_the_cli_requeue_of_all_logs_how_many(make_app, fake_api, caplog):
    """`replies requeue --all` logs the count and who asked."""
    app = make_app()
    fake_api.fail(2, 400, code=30007)
    for _ in range(2):
        post_event(app.test_client(), message_added())
    run_until_idle(services(app).sender)
    caplog.set_level(logging.INFO, logger="app.operator")
    result = app.test_cli_runner().invoke(args=["replies", "requeue", "--all"])
    assert result.output == "requeued 2 replies\n"
    assert requeued_lines(caplog) == ["failed replies requeued count=2 by=cli"]


@pytest.fixture
def admin_app(make_app):
    return make_app(ADMIN_TOKEN=TOKEN, PUBLIC_BASE_URL="https://bot.example.com")


def test_every_door_refuses_in_the_same_words(admin_app, fake_api):
    """A reply that did not fail, or does not exist: the CLI, the API and the dashboard
    give the same reason."""
    post_event(admin_app.test_client(), message_added(),
               url="https://bot.example.com/webhooks/conversations")
    run_until_idle(services(admin_app).sender)
    [sent] = reply_ids(admin_app)
    browser = admin_app.test_client()
    login(browser, TOKEN)
    for reply_id, reason, status in (
            (sent, f"reply {sent} is sent, not failed: nothing to requeue", 409),
            (sent + 1, f"reply {sent + 1} does not exist", 404)):
        cli = admin_app.test_cli_runner().invoke(args=["replies", "requeue", str(reply_id)])
        assert cli.exit_code == 1 and cli.output == f"Error: {reason}\n"
        api = admin_app.test_client().post(f"/api/replies/{reply_id}/requeue", headers=AUTH)
        words = "409 Conflict" if status == 409 else "404 Not Found"
        assert api.status_code == status and api.get_json()["error"] == f"{words}: {reason}"
        answer = post(browser, f"/admin/replies/{reply_id}/requeue", back="/admin/replies")
        if status == 404:  # no such reply: the dashboard's 404, as for an unknown page
            assert answer.status_code == 404
        else:
            assert reason in get(browser, "/admin/replies").get_data(as_text=True)


@pytest.mark.parametrize("door", ["api", "dashboard"])
def test_the_api_and_the_dashboard_log_their_requeue(admin_app, fake_api, caplog, door):
    """Requeued from the API or the dashboard: the same line, naming the door."""
    reply_id = a_failed_reply(admin_app, fake_api)
    caplog.set_level(logging.INFO, logger="app.operator")
    if door == "api":
        answer = admin_app.test_client().post(f"/api/replies/{reply_id}/requeue",
                                              headers=AUTH)
        assert answer.status_code == 200
    else:
        browser = admin_app.test_client()
        login(browser, TOKEN)
        assert post(browser, f"/admin/replies/{reply_id}/requeue").status_code == 302
    assert requeued_lines(caplog) == [f"reply requeued reply_id={reply_id} by={door}"]
    assert statuses(admin_app) == ["queued"]


def test_a_reply_sending_again_cannot_help_is_not_requeued(admin_app, fake_api):
    """Failed with 21610 (the customer opted out) or 63016: one reply is refused with
    the reason, through the CLI and the API alike, and `--all` leaves it failed (it was
    sent again to a customer who had opted out)."""
    fake_api.fail(1, 400, code=21610)
    post_event(admin_app.test_client(), message_added(),
               url="https://bot.example.com/webhooks/conversations")
    run_until_idle(services(admin_app).sender)
    [reply_id] = reply_ids(admin_app)
    assert statuses(admin_app) == ["failed"]
    cli = admin_app.test_cli_runner().invoke(args=["replies", "requeue", str(reply_id)])
    assert cli.exit_code == 1 and "failed with error 21610" in cli.output
    assert "sending it again cannot help" in cli.output
    api = admin_app.test_client().post(f"/api/replies/{reply_id}/requeue", headers=AUTH)
    assert api.status_code == 409 and "21610" in api.get_json()["error"]
    every = admin_app.test_cli_runner().invoke(args=["replies", "requeue", "--all"])
    assert every.output == "requeued 0 replies\n"
    assert statuses(admin_app) == ["failed"]
    run_until_idle(services(admin_app).sender)
    assert fake_api.created == []


def test_an_undelivered_reply_is_refused_naming_its_delivery(admin_app, fake_api):
    """Sent, then undelivered (30003): the refusal says so, not "is sent, not failed"."""
    from tests.support.webhooks import delivery_updated

    params = message_added()
    post_event(admin_app.test_client(), params,
               url="https://bot.example.com/webhooks/conversations")
    run_until_idle(services(admin_app).sender)
    post_event(admin_app.test_client(), delivery_updated(
        message_sid=fake_api.created[-1].sid, conversation_sid=params["ConversationSid"],
        status="undelivered", error_code="30003"),
        url="https://bot.example.com/webhooks/conversations")
    [reply_id] = reply_ids(admin_app)
    cli = admin_app.test_cli_runner().invoke(args=["replies", "requeue", str(reply_id)])
    assert cli.exit_code == 1
    assert f"reply {reply_id} was sent, then undelivered (error 30003)" in cli.output
