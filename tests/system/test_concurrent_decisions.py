"""Simultaneous messages of one conversation, on several workers and instances: the
rules still hold (issue 9, "Concurrency-safe").

Each conversation's messages are posted at one instant (a barrier releases every
request of a round together), spread over the servers, to real gunicorn processes on
one database. The conversation's state is read before deciding and updated in the
claim's transaction under its lock, so whatever the interleaving: one reply under the
cooldown, no more than the budget without it, and one reply of a conversation in
flight at a time, in queue order.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from itertools import pairwise

import pytest
import requests
from sqlalchemy import create_engine, select

from app.services import services
from app.store.models import Conversation, ProcessedEvent, Reply
from tests.support.databases import PG_URL, reset_postgres
from tests.support.servers import flask_cli, gunicorn, reply_counts
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, post_event, sign

CONVERSATIONS = 20
PER_CONVERSATION = 6
PER_ROUND = 1  # conversations posted together (several in one round make group-commit
# batches on PostgreSQL deadlock on each other's rows: correct, but a 1 s stall each)

needs_postgres = pytest.mark.skipif(
    not PG_URL, reason="TEST_DATABASE_URL is not set: several instances on one database "
    "need PostgreSQL")


def server_env(tmp_path, database_url: str, fake_api, **overrides) -> dict:
    """Settings for real servers against the fake API, migrated as in the release phase."""
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path, "SENDER_POLL_SECONDS": "0.1",
        "LOG_LEVEL": "INFO",  # wait_workers reads the workers' "background work started"
        **overrides,
    }
    migrated = flask_cli(env, "db", "upgrade")
    assert migrated.returncode == 0, migrated.stderr
    return env


def start(stack: ExitStack, env: dict, tmp_path, *, instances: int, workers: int) -> list:
    """Start `instances` gunicorn servers side by side, each with all its workers up."""
    def start_one(i: int):
        server = stack.enter_context(gunicorn(env, tmp_path / f"server{i}.log", workers=workers))
        server.wait_workers(workers)
        return server

    with ThreadPoolExecutor(instances) as pool:
        return list(pool.map(start_one, range(instances)))


def post_simultaneously(servers: list, conversations: list[str]) -> None:
    """Post PER_CONVERSATION messages of each conversation, PER_ROUND conversations at
    one instant, the messages of each spread over the servers; all must be answered 200."""
    for first in range(0, len(conversations), PER_ROUND):
        posts = []
        for sid in conversations[first:first + PER_ROUND]:
            for i in range(PER_CONVERSATION):
                params = message_added(conversation_sid=sid, body=f"Hello? ({i})")
                posts.append((servers[i % len(servers)].url + "/webhooks/conversations", params))
        statuses = post_at_once(posts)
        assert statuses == [200] * len(posts), "\n".join(s.log for s in servers)[-3000:]


def post_at_once(posts: list[tuple[str, dict]]) -> list[int | str]:
    """Post each (url, params), signed for its URL, all released by one barrier; return
    each status (or what went wrong)."""
    barrier = threading.Barrier(len(posts))
    statuses: list[int | str] = ["not answered"] * len(posts)

    def post(index: int) -> None:
        url, params = posts[index]
        with requests.Session() as session:
            prepared = session.prepare_request(requests.Request(
                "POST", url, data=params, headers={"X-Twilio-Signature": sign(params, url)}))
            try:
                barrier.wait(timeout=10)
                response = session.send(prepared, timeout=10)
            except Exception as exc:  # noqa: BLE001 - reported by the caller's assertion
                statuses[index] = repr(exc)
                return
        statuses[index] = response.status_code if response.status_code == 200 \
            else f"{response.status_code} {response.text[:300]}"

    threads = [threading.Thread(target=post, args=(i,)) for i in range(len(posts))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    return statuses


def wait_all_settled(database_url: str) -> dict[str, int]:
    """Wait until no reply is queued or being sent; return the counts by status."""
    # Every reply was queued before its webhook's 200, so none can appear later.
    return wait_for(lambda: (counts := reply_counts(database_url))
                    and set(counts) <= {"sent", "failed"} and counts, timeout=30, interval=0.1)


def decisions(database_url: str) -> dict[str, Counter]:
    """The stored decision (processed_events.reason) of each message, per conversation."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(ProcessedEvent.conversation_sid, ProcessedEvent.reason)
                                .where(ProcessedEvent.event_type == "onMessageAdded")).all()
    finally:
        engine.dispose()
    per_conversation = defaultdict(Counter)
    for sid, reason in rows:
        per_conversation[sid][reason] += 1
    return dict(per_conversation)


def queued_order(database_url: str) -> dict[str, list[str]]:
    """Each conversation's replies (the message they answer) in the order they were queued."""
    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(Reply.conversation_sid, Reply.in_reply_to)
                                .order_by(Reply.id)).all()
    finally:
        engine.dispose()
    order = defaultdict(list)
    for sid, in_reply_to in rows:
        order[sid].append(in_reply_to)
    return dict(order)


def assert_one_reply_each(database_url: str, fake_api, conversations: list[str],
                          servers: list) -> None:
    assert wait_all_settled(database_url) == {"sent": len(conversations)}
    assert len(fake_api.created) == len(conversations)
    assert Counter(c.conversation_sid for c in fake_api.created) == \
        dict.fromkeys(conversations, 1)
    assert decisions(database_url) == {
        sid: Counter(REPLY=1, COOLDOWN=PER_CONVERSATION - 1) for sid in conversations}
    for server in servers:
        assert "Traceback" not in server.log


@needs_postgres
def test_two_instances_on_postgresql_send_one_reply_under_the_cooldown(tmp_path, fake_api):
    """6 simultaneous messages per conversation over 2 instances x 2 workers: one reply."""
    reset_postgres(PG_URL)
    env = server_env(tmp_path, PG_URL, fake_api)
    conversations = [message_added()["ConversationSid"] for _ in range(CONVERSATIONS)]
    with ExitStack() as stack:
        servers = start(stack, env, tmp_path, instances=2, workers=2)
        post_simultaneously(servers, conversations)
        assert_one_reply_each(PG_URL, fake_api, conversations, servers)


def test_four_workers_on_one_sqlite_file_send_one_reply_under_the_cooldown(tmp_path, fake_api):
    """6 simultaneous messages per conversation over 4 worker processes on one SQLite file."""
    url = f"sqlite:///{tmp_path / 'bot.sqlite3'}"
    env = server_env(tmp_path, url, fake_api)
    conversations = [message_added()["ConversationSid"] for _ in range(CONVERSATIONS)]
    with ExitStack() as stack:
        servers = start(stack, env, tmp_path, instances=1, workers=4)
        post_simultaneously(servers, conversations)
        assert_one_reply_each(url, fake_api, conversations, servers)


@needs_postgres
def test_budget_holds_and_replies_go_one_at_a_time_in_order(tmp_path, fake_api):
    """No cooldown, budget 3: 6 simultaneous messages give 3 replies, sent one by one."""
    reset_postgres(PG_URL)
    env = server_env(tmp_path, PG_URL, fake_api, AUTO_REPLY_COOLDOWN="0", AUTO_REPLY_BUDGET="3")
    fake_api.latency = 0.05  # a reply sent while the previous one is in flight would overlap it
    conversations = [message_added()["ConversationSid"] for _ in range(CONVERSATIONS)]
    with ExitStack() as stack:
        servers = start(stack, env, tmp_path, instances=2, workers=2)
        post_simultaneously(servers, conversations)
        assert wait_all_settled(PG_URL) == {"sent": 3 * len(conversations)}
        for server in servers:
            assert "Traceback" not in server.log

    assert decisions(PG_URL) == {
        sid: Counter(REPLY=3, BUDGET=PER_CONVERSATION - 3) for sid in conversations}
    queued = queued_order(PG_URL)
    for sid in conversations:
        sent = sorted(fake_api.replies_to(sid), key=lambda c: c.at)
        assert [c.in_reply_to for c in sent] == queued[sid]  # in the order they were queued
        for previous, following in pairwise(sent):
            assert following.received_at > previous.at  # asked after the previous was done


class ReadTogether:
    """The app's real state reader; each conversation read then waits until `parties`
    requests have read, so they all decide on the same state before any commits."""

    def __init__(self, reader, parties: int):
        self._reader = reader
        self._barrier = threading.Barrier(parties)

    def conversation(self, *args, **kwargs):
        seen = self._reader.conversation(*args, **kwargs)
        self._barrier.wait(timeout=10)
        return seen

    def __getattr__(self, name):
        return getattr(self._reader, name)


def test_a_decision_made_on_stale_state_is_made_again(app, database_url, monkeypatch):
    """Two messages decided on the same (empty) state: the second to commit takes the
    conflict path (lock, read again, decide again) and records COOLDOWN, answered 200."""
    processor = services(app).processor
    monkeypatch.setattr(processor, "state", ReadTogether(processor.state, 2))
    sid = message_added()["ConversationSid"]
    messages = [message_added(conversation_sid=sid) for _ in range(2)]
    statuses: list[int | str] = ["not answered"] * 2

    def post(index: int) -> None:
        response = post_event(app.test_client(), messages[index])
        statuses[index] = response.status_code if response.status_code == 200 \
            else f"{response.status_code} {response.get_data(as_text=True)[:300]}"

    threads = [threading.Thread(target=post, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert statuses == [200, 200]
    assert decisions(database_url) == {sid: Counter(REPLY=1, COOLDOWN=1)}
    assert reply_counts(database_url) == {"queued": 1}


@needs_postgres
def test_one_customer_stopping_in_many_conversations_at_once(tmp_path, fake_api):
    """A customer waits for an agent in 8 conversations and sends STOP in all of them at
    one instant, over 2 instances x 2 workers: every STOP is answered 200 and recorded,
    and the customer waits nowhere (each unit writes only its own conversation's row:
    group commit's batches take row locks in one order and never deadlock)."""
    reset_postgres(PG_URL)
    env = server_env(tmp_path, PG_URL, fake_api, HANDOFF_WINDOW="30m")
    customer = "+15557654321"
    conversations = [message_added()["ConversationSid"] for _ in range(8)]
    with ExitStack() as stack:
        servers = start(stack, env, tmp_path, instances=2, workers=2)
        for sid in conversations:
            post_at_once([(servers[0].url + "/webhooks/conversations", message_added(
                conversation_sid=sid, author=customer, body="talk to a human"))])
        for _ in range(3):  # three rounds, to meet the interleavings that deadlocked
            stops = [(servers[i % 2].url + "/webhooks/conversations", message_added(
                conversation_sid=sid, author=customer, body="STOP"))
                for i, sid in enumerate(conversations)]
            assert post_at_once(stops) == [200] * len(stops)
        for server in servers:
            assert "Traceback" not in server.log and "deadlock" not in server.log
    assert decisions(PG_URL) == {
        sid: Counter(REPLY=1, COMPLIANCE_KEYWORD=3) for sid in conversations}
    engine = create_engine(PG_URL.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            assert conn.execute(select(Conversation.sid).where(
                Conversation.waiting_since.is_not(None))).all() == []
    finally:
        engine.dispose()
