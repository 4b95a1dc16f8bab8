"""Replies at Twilio's pace, through real gunicorn workers and a dedicated sender: the
calls in flight across every process stay within TWILIO_CONCURRENCY_LIMIT, a throttling
API is met with fewer calls (few 429s, nothing lost or doubled), and a conversation's
replies go out one at a time and in order even when a send fails."""

import itertools
from collections import defaultdict

import pytest
import requests

from tests.support.databases import on_one_database
from tests.support.servers import gunicorn, reply_counts, sender_process
from tests.support.waiting import wait_for
from tests.support.webhooks import assert_each_answered_once, message_added, sign


def post_all(server_url: str, messages: list[dict]) -> list[dict]:
    """Post signed webhooks over one connection; return those acknowledged with 200."""
    url = server_url + "/webhooks/conversations"
    with requests.Session() as session:
        return [m for m in messages
                if session.post(url, data=m, timeout=10,
                                headers={"X-Twilio-Signature": sign(m, url)}).status_code == 200]


def sent_all(database_url: str, count: int, timeout: float = 90) -> None:
    wait_for(lambda: reply_counts(database_url) == {"sent": count}, timeout, interval=0.2)


def test_calls_in_flight_stay_within_the_limit_across_processes(server_env, tmp_path,
                                                                 fake_api):
    """Two web workers and a dedicated sender share a limit of 6 calls in flight."""
    env = {**server_env, "TWILIO_CONCURRENCY_LIMIT": "6"}
    fake_api.latency = 0.15
    sender = sender_process(env, tmp_path / "sender.log")
    try:
        with gunicorn(env, tmp_path / "server.log", workers=2) as server:
            accepted = post_all(server.url, [message_added() for _ in range(90)])
            sent_all(env["DATABASE_URL"], len(accepted))
    finally:
        sender.terminate()
        sender.wait(30)
    assert len(accepted) == 90
    assert_each_answered_once(fake_api, accepted)
    assert fake_api.max_in_flight <= 6
    # and they use what they are given: more calls at once than one sender's share (6 / 3)
    assert fake_api.max_in_flight > 2


@on_one_database()  # each process's window: the database plays no part
def test_a_throttling_api_gets_few_429s_and_every_reply_once(server_env, tmp_path, fake_api):
    """Twilio answers 429 above 8 calls in flight; the limit says 20. The senders halve
    and grow back: few 429s (at most 15% as many as replies; two senders each probe
    upward, and a slot is free as soon as Twilio answers: 10-11% measured), nothing
    lost or doubled."""
    env = {**server_env, "TWILIO_CONCURRENCY_LIMIT": "20", "SENDER_IN_PROCESS": "false"}
    fake_api.latency = 0.05
    fake_api.throttle_above = 8
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        accepted = post_all(server.url, [message_added() for _ in range(400)])
    logs = [tmp_path / f"sender{i}.log" for i in range(2)]
    senders = [sender_process(env, log) for log in logs]  # a backlog of 400, two senders
    try:
        sent_all(env["DATABASE_URL"], len(accepted))
    finally:
        for sender in senders:
            sender.terminate()
            sender.wait(30)
    log = "".join(path.read_text() for path in logs)
    assert len(accepted) == 400
    assert_each_answered_once(fake_api, accepted)
    assert 0 < fake_api.throttled <= 0.15 * len(accepted), fake_api.throttled
    assert "sending concurrency" in log  # the change is logged


@pytest.fixture
def chatty_env(server_env):
    """Every message of a conversation is answered (no cooldown, no hourly cap)."""
    return {**server_env, "AUTO_REPLY_COOLDOWN": "0", "AUTO_REPLY_BUDGET": "1000"}


def test_a_conversations_replies_go_one_at_a_time_in_order_despite_a_failure(
        chatty_env, tmp_path, fake_api):
    """20 conversations, 3 messages each; the first send fails with a 503. Each
    conversation's replies are created in the order of its messages, never two at once."""
    fake_api.latency = 0.05
    fake_api.fail(1, status=503)
    conversations = [fake_api.add_conversation() for _ in range(20)]
    rounds = [[message_added(conversation_sid=c) for c in conversations] for _ in range(3)]
    with gunicorn(chatty_env, tmp_path / "server.log", workers=2) as server:
        accepted = post_all(server.url, list(itertools.chain(*rounds)))
        sent_all(chatty_env["DATABASE_URL"], len(accepted))
    assert len(accepted) == 60
    assert_each_answered_once(fake_api, accepted)
    by_conversation = defaultdict(list)
    for created in fake_api.created:
        by_conversation[created.conversation_sid].append(created)
    out_of_order = overlapping = 0
    for sid in conversations:
        created = sorted(by_conversation[sid], key=lambda c: c.received_at)
        asked = [m["MessageSid"] for r in rounds for m in r if m["ConversationSid"] == sid]
        out_of_order += [c.in_reply_to for c in created] != asked
        overlapping += any(after.received_at < before.at
                           for before, after in itertools.pairwise(created))
    assert (out_of_order, overlapping) == (0, 0)
