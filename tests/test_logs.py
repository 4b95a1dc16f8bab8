"""app/logs.py: log context and formats (which conversation, message and request each
line is about), and what a log line may show of a URL."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import subprocess
import sys

import pytest
from sqlalchemy import select

from app.logs import (
    ContextFilter,
    JsonFormatter,
    TextFormatter,
    current_context,
    install,
    log_context,
    without_query,
)
from app.services import services
from app.store.models import Reply
from tests.support.sending import run_until_idle
from tests.support.servers import ROOT
from tests.support.webhooks import delivery_updated, message_added, post_event


@pytest.fixture
def lines():
    """Everything logged during the test, as the app's JSON handler writes it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    install(handler, "json")
    root = logging.getLogger()
    root.addHandler(handler)
    yield lambda: [json.loads(line) for line in stream.getvalue().splitlines()]
    root.removeHandler(handler)


def record(message: str, **context) -> logging.LogRecord:
    with log_context(**context):
        # Through the factory in force: a serving app's (app/logs.py) fills in the pid.
        rec = logging.getLogRecordFactory()("app.test", logging.INFO, __file__, 1, message,
                                            (), None)
        ContextFilter().filter(rec)
    return rec


def test_context_nests_skips_empty_values_and_ends_with_its_block():
    """An inner block adds to the outer one; empty values are left out; both end."""
    with log_context(conversation_sid="CH1", request_id="r1"):
        with log_context(message_sid="IM1", request_id="r2", reply_id=None, channel=""):
            assert dict(current_context()) == {
                "conversation_sid": "CH1", "request_id": "r2", "message_sid": "IM1"}
        assert dict(current_context()) == {"conversation_sid": "CH1", "request_id": "r1"}
    assert dict(current_context()) == {}


def test_each_asyncio_task_has_its_own_context():
    """Replies sent side by side in one event loop never mix their fields."""
    async def send(sid: str) -> str:
        with log_context(conversation_sid=sid):
            await asyncio.sleep(0)  # let the other task run inside its own block
            return current_context()["conversation_sid"]

    async def main():
        return await asyncio.gather(*(send(f"CH{i}") for i in range(5)))

    assert asyncio.run(main()) == [f"CH{i}" for i in range(5)]


def test_text_lines_end_with_the_context_once():
    """Text: fields appended as key=value; one the message already shows is not repeated."""
    rec = record("reply sent message_sid=IM1", conversation_sid="CH1", message_sid="IM1",
                 request_id="r 1")
    line = TextFormatter().format(rec)
    assert line.endswith('reply sent message_sid=IM1 conversation_sid=CH1 request_id="r 1"')
    assert line.count("message_sid=") == 1


def test_a_field_shown_under_another_name_is_not_repeated():
    """`conversation=CH1` (our lines) or `ConversationSid=CH1` (a receipt's) is the
    context's conversation_sid: the line carries the SID once; a longer value that merely
    starts with it is a different value."""
    for message in ("event event=onMessageAdded conversation=CH1 outcome=x",
                    "delivery ConversationSid=CH1 MessageSid=IM1 Status=read",
                    "reply sent reply_id=7 conversation=CH1"):
        line = TextFormatter().format(record(message, conversation_sid="CH1",
                                             message_sid="IM1", request_id="r1"))
        assert line.count("CH1") == 1 and line.endswith("request_id=r1"), line
    line = TextFormatter().format(record("x other=CH10", conversation_sid="CH1"))
    assert line.endswith("x other=CH10 conversation_sid=CH1")


def test_webhook_and_reply_lines_name_the_conversation_once(app, client, sender, caplog):
    """Every text line about a webhook, its reply and its receipt carries the
    conversation's SID once."""
    caplog.set_level(logging.DEBUG)
    params = message_added()
    assert post_event(client, params).status_code == 200
    assert run_until_idle(sender) == 1
    with services(app).db.read() as conn:
        reply_sid = conn.execute(select(Reply.twilio_message_sid)).scalar()
    assert post_event(client, delivery_updated(
        conversation_sid=params["ConversationSid"], message_sid=reply_sid)).status_code == 200
    formatter = TextFormatter()
    about = [formatter.format(r) for r in caplog.records
             if params["ConversationSid"] in formatter.format(r)]
    assert {line.split(": ", 1)[1].split(" ", 1)[0] for line in about} >= {
        "event", "reply", "delivery"}
    for line in about:
        assert line.count(params["ConversationSid"]) == 1, line


def test_json_lines_are_objects_with_the_context_and_the_traceback():
    """JSON: one object per line with time, level, logger, pid, message, the context,
    extra fields, and a traceback as one string."""
    try:
        raise ValueError("boom\nsecond line")
    except ValueError:
        import sys
        with log_context(conversation_sid="CH1"):
            rec = logging.LogRecord("app.test", logging.ERROR, __file__, 1, "failed %s",
                                    ("x",), sys.exc_info())
            ContextFilter().filter(rec)
    rec.reply_id = 7
    text = JsonFormatter().format(rec)
    assert "\n" not in text
    line = json.loads(text)
    assert line["message"] == "failed x"
    assert line["level"] == "ERROR" and line["logger"] == "app.test"
    assert line["conversation_sid"] == "CH1" and line["reply_id"] == 7
    assert "ValueError: boom" in line["exc_info"]
    assert {"time", "pid"} <= line.keys()


def test_webhook_request_id_is_returned_logged_and_stored(app, client, lines):
    """A proxy's X-Request-Id comes back in the response, is on every line about the
    webhook with its SIDs, and is stored with the reply it queued."""
    params = message_added()
    response = post_event(client, params, headers={"X-Request-Id": "req-abc-123"})
    assert response.headers["X-Request-Id"] == "req-abc-123"
    about = [line for line in lines() if line.get("request_id") == "req-abc-123"]
    assert any(line["message"].startswith("event ") for line in about)
    for line in about:
        assert line["conversation_sid"] == params["ConversationSid"]
        assert line["message_sid"] == params["MessageSid"]
    with services(app).db.engine.connect() as conn:
        stored = conn.execute(select(Reply.request_id)
                              .where(Reply.in_reply_to == params["MessageSid"])).scalar()
    assert stored == "req-abc-123"


@pytest.mark.parametrize("given", ["has space", "x" * 65, "<script>", "a\u00e9", "-lead"])
def test_unsafe_request_id_falls_back_to_twilios_token(client, given):
    """A malformed X-Request-Id is not echoed; Twilio's idempotency token is used."""
    response = post_event(client, message_added(), headers={
        "X-Request-Id": given, "I-Twilio-Idempotency-Token": "b6c2a1e0-tok"})
    assert response.headers["X-Request-Id"] == "b6c2a1e0-tok"


def test_request_id_generated_without_either_header_even_for_a_403(client, lines):
    """No header at all: a new id, also on a refused webhook and its log line."""
    response = client.post("/webhooks/conversations", data="EventType=onMessageAdded",
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 403
    request_id = response.headers["X-Request-Id"]
    assert len(request_id) == 32
    rejected = [line for line in lines() if line["message"].startswith("webhook rejected")]
    assert rejected and rejected[0]["request_id"] == request_id


@pytest.mark.parametrize("url, shown", [
    ("/api/stats", "/api/stats"),
    ("/api/stats?token=abc&since=24h", "/api/stats?[redacted]"),
    ("/admin/?", "/admin/?[redacted]"),
    ("/admin/#token=abc", "/admin/?[redacted]"),
    ("https://bot.example.com/webhooks/conversations?tenant=a%20b",
     "https://bot.example.com/webhooks/conversations?[redacted]"),
    ("-", "-"),
    ("", ""),
])
def test_without_query(url, shown):
    assert without_query(url) == shown


def test_a_command_on_a_fresh_database_prints_its_answer_not_alembics(tmp_path):
    """The first command on a new SQLite file brings the schema up to date; what it
    prints is still only its own answer (Alembic logs each plugin it sets up at INFO)."""
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path),
           "DATABASE_URL": f"sqlite:///{tmp_path}/fresh.db", "INSTANCE_DIR": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "flask", "--app", "wsgi", "rules", "check",
                           "rules.example.toml"], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "fresh.db").exists()  # it did migrate
    assert done.stdout.startswith("rules.example.toml: OK")
    assert "alembic" not in done.stdout + done.stderr
