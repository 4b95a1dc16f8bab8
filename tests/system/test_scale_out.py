"""Scale-out: several server instances and senders on one PostgreSQL database.

Many concurrent webhooks, each unique message posted to several instances at once:
every message is answered exactly once.
"""

import random
from concurrent.futures import ThreadPoolExecutor

import pytest
import requests

from tests.support.databases import PG_URL, reset_postgres
from tests.support.servers import flask_cli, gunicorn, reply_counts, sender_process
from tests.support.waiting import wait_for
from tests.support.webhooks import ACCOUNT_SID, AUTH_TOKEN, message_added, sign

pytestmark = pytest.mark.skipif(not PG_URL, reason="TEST_DATABASE_URL is not set: "
                                "several instances need PostgreSQL")


def test_instances_and_senders_answer_each_message_exactly_once(tmp_path, fake_api):
    from contextlib import ExitStack

    reset_postgres(PG_URL)
    base = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": PG_URL,
        "INSTANCE_DIR": tmp_path, "SENDER_POLL_SECONDS": "0.2", "LOG_LEVEL": "WARNING",
    }
    assert flask_cli(base, "db", "upgrade").returncode == 0  # the release phase
    fake_api.latency = 0.02
    with ExitStack() as stack:
        servers = [
            stack.enter_context(gunicorn({**base, "SENDER_IN_PROCESS": "true"},
                                         tmp_path / "a.log", workers=2)),
            stack.enter_context(gunicorn({**base, "SENDER_IN_PROCESS": "false"},
                                         tmp_path / "b.log", workers=2)),
            stack.enter_context(gunicorn({**base, "SENDER_IN_PROCESS": "false"},
                                         tmp_path / "c.log", workers=2)),
        ]
        senders = [sender_process(base, tmp_path / f"sender{i}.log") for i in range(2)]
        stack.callback(lambda: [s.terminate() or s.wait(20) for s in senders])

        unique = [message_added() for _ in range(150)]
        deliveries = [(params, server) for params in unique
                      for server in random.sample(servers, 3)]
        random.shuffle(deliveries)

        def deliver(item):
            """Post until answered 200. A 503 is the server keeping Twilio's 5 s when the
            database cannot answer within DATABASE_TIMEOUT (24 posts at once on a loaded
            2-core machine can get there); the message is then not recorded, and is
            posted again, as catch-up would find it."""
            params, server = item
            url = server.url + "/webhooks/conversations"
            for _ in range(5):
                status = requests.post(url, data=params, timeout=10,
                                       headers={"X-Twilio-Signature": sign(params, url)}
                                       ).status_code
                if status != 503:
                    return status
            return status

        with ThreadPoolExecutor(24) as pool:
            statuses = list(pool.map(deliver, deliveries))
        assert statuses == [200] * len(deliveries)

        wait_for(lambda: reply_counts(PG_URL) == {"sent": len(unique)}, timeout=60,
                 interval=0.2)

    answered = [c.form["Attributes"] for c in fake_api.created]
    assert len(answered) == len(unique)
    assert sorted(answered) == sorted({a for a in answered})
    for server in servers:
        assert "Traceback" not in server.log
