"""`gunicorn --preload`: the app is built once in the master, then forked into workers.
Background work starts in each worker, never in the master, and webhooks work."""

from __future__ import annotations

import re

from tests.support.servers import flask_cli, gunicorn, reply_counts
from tests.support.waiting import wait_for
from tests.support.webhooks import (
    ACCOUNT_SID,
    AUTH_TOKEN,
    message_added,
    post,
    reply_attributes,
)


def test_preload_starts_background_work_in_each_worker_only(tmp_path, database_url, fake_api):
    """Each worker logs "background work started pid=<its pid>", the master never does,
    and a webhook's reply is sent."""
    env = {
        "TWILIO_ACCOUNT_SID": ACCOUNT_SID, "TWILIO_AUTH_TOKEN": AUTH_TOKEN,
        "TWILIO_API_BASE_URL": fake_api.url, "DATABASE_URL": database_url,
        "INSTANCE_DIR": tmp_path, "SENDER_IN_PROCESS": "true", "SENDER_POLL_SECONDS": "0.1",
    }
    assert flask_cli(env, "db", "upgrade").returncode == 0
    with gunicorn(env, tmp_path / "server.log", workers=2, args=["--preload"]) as server:
        server.wait_workers(2)
        master = server.process.pid
        workers = server.worker_pids()
        assert len(workers) == 2
        params = message_added()
        assert post(server.url, params).status_code == 200
        wait_for(lambda: reply_counts(database_url) == {"sent": 1}, timeout=20, interval=0.1)
        wait_for(lambda: workers <= {int(pid) for pid in re.findall(
            r"background work started pid=(\d+)", server.log)}, timeout=10)
        started = {int(pid) for pid in re.findall(r"background work started pid=(\d+)",
                                                  server.log)}
        assert master not in started
        assert workers <= started
    assert [c.form["Attributes"] for c in fake_api.created] == [reply_attributes(params)]
