"""Exactly once when Twilio is slow: creates that land after the sender gave up on them
(8 s and 18 s, with TWILIO_HTTP_TIMEOUT at 6 s) or never land, a kill -9 of the sender
in the middle, a restart. Every message acknowledged gets exactly one reply, in order.

Five conversations of four messages, sent by a dedicated sender, all at once:
  A1, A2  the first reply lands 8 s after its request: it times out at 6 s, and a
          look-up soon after does not find it yet;
  B1, B2  the first reply takes 3 s (answered in time), the second lands 18 s after its
          request: in flight when the sender is killed, its lease is taken over later;
  C       the first reply is never created (Twilio dropped it): after the settle time it
          must be sent again, once.
The sender is killed once the first replies of A and C have timed out (their unknown
outcome is in the database) while B's second replies are held at the fake API.
"""

import os
import re
import signal
from collections import defaultdict

from tests.support.servers import gunicorn, reply_counts, sender_process
from tests.support.waiting import wait_for
from tests.support.webhooks import message_added, post

# Only the order of these matters (answered < TIMEOUT < late landings < SETTLE), not their
# size: smaller than the defaults so that the test takes half a minute, not a minute.
TIMEOUT = 6  # TWILIO_HTTP_TIMEOUT: the 8 s and 18 s creates outlast it
SETTLE = 21  # SEND_SETTLE_SECONDS: just above the slowest landing (18 s)


def timed_out(log: str, message_sid: str) -> bool:
    """Whether the sender's log says the reply to `message_sid` timed out."""
    return any("will retry" in line and 'error="timed out' in line
               for line in log.splitlines() if f"in_reply_to={message_sid} " in line)


def test_late_creates_and_a_kill_9_get_every_message_exactly_one_reply(
        server_env, tmp_path, fake_api):
    """Creates landing 8 s and 18 s late, one never landing, a kill -9 of the sender in
    the middle and a restart: one reply per message, none lost, order kept."""
    env = {**server_env, "SENDER_IN_PROCESS": "false", "TWILIO_HTTP_TIMEOUT": str(TIMEOUT),
           "SEND_SETTLE_SECONDS": str(SETTLE),
           "SEND_LEASE": "9s",  # longer than a call (6 s), short for the test's sake
           "AUTO_REPLY_COOLDOWN": "0"}  # every message of a conversation is answered
    conversations = {name: [message_added(conversation_sid=sid)
                            for _ in range(4)]
                     for name, sid in ((n, fake_api.add_conversation())
                                       for n in ("A1", "A2", "B1", "B2", "C"))}
    first = {name: messages[0]["MessageSid"] for name, messages in conversations.items()}
    fake_api.land_late(8, [first["A1"], first["A2"]])
    fake_api.land_late(3, [first["B1"], first["B2"]])
    fake_api.land_late(18, [conversations[n][1]["MessageSid"] for n in ("B1", "B2")])
    fake_api.land_late(8, [first["C"]], lands=False)

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with gunicorn(env, tmp_path / "server.log", workers=1) as server:
        posted = [m for messages in conversations.values() for m in messages]
        assert all(post(server.url, m).status_code == 200 for m in posted)
        sender = sender_process(env, first_log)  # leases the five first replies at once
        try:
            # The kill: A's and C's first replies timed out (6 s), B's second are held.
            wait_for(lambda: all(timed_out(first_log.read_text(), first[n])
                                 for n in ("A1", "A2", "C")), timeout=60, interval=0.05)
            held = {conversations[n][1]["MessageSid"] for n in ("B1", "B2")}
            assert held <= fake_api.holding, "B's 18 s creates should still be in flight"
            os.kill(sender.pid, signal.SIGKILL)
            assert sender.wait(10) == -signal.SIGKILL
            sender = sender_process(env, second_log)

            wait_for(lambda: reply_counts(env["DATABASE_URL"]) == {"sent": 20},
                     timeout=90, interval=0.2)
            wait_for(lambda: fake_api.in_flight == 0, timeout=15)  # nothing left to land
        finally:
            sender.send_signal(signal.SIGTERM)
            sender.wait(30)

    answers = fake_api.answers()
    assert {sid: n for sid, n in answers.items() if n != 1} == {}
    assert set(answers) == {m["MessageSid"] for m in posted}
    landed = defaultdict(list)
    for created in fake_api.created:
        landed[created.conversation_sid].append(created.in_reply_to)
    for messages in conversations.values():
        assert landed[messages[0]["ConversationSid"]] == [m["MessageSid"] for m in messages]

    # A and B were found at Twilio after the restart, not sent again; C was sent again,
    # but only once the settle time had passed since its lost attempt began.
    log = second_log.read_text()
    found = set(re.findall(r"reply found already sent .*in_reply_to=(\w+)", log))
    assert {first["A1"], first["A2"], *held} <= found
    [dropped] = fake_api.dropped
    [resent] = [c for c in fake_api.created if c.in_reply_to == first["C"]]
    assert SETTLE - 2 <= resent.received_at - dropped.received_at <= SETTLE + 20
