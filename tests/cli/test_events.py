"""`events stats`: processed webhooks counted by outcome kind."""

from tests.support.webhooks import delivery_updated, message_added, post_event


def test_events_are_counted_by_kind(client, runner):
    """Each kind is counted, whatever the detail of its outcome."""
    assert runner.invoke(args=["events", "stats"]).output.strip() == "no events"
    params = message_added()
    post_event(client, params)
    post_event(client, params)  # a duplicate is not stored again
    post_event(client, message_added(author="alice@support"))
    post_event(client, message_added(author="support-bot"))
    post_event(client, delivery_updated(status="delivered"))
    result = runner.invoke(args=["events", "stats", "--since", "1h"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["reply queued: 1", "ignored: 2", "receipt: 1"]
