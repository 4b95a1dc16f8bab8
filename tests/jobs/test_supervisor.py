"""Supervisor: background loops start once per process, are restarted when they die,
and a dead sender makes /healthz answer 503 with the reason."""

import logging
import threading

from sqlalchemy import select

from app.delivery import outbox
from app.jobs import supervisor
from app.jobs.supervisor import Supervisor
from app.services import services
from app.store.models import HourlyCount
from tests.support.waiting import wait_for
from tests.support.webhooks import message_added, post_event


def test_a_sender_that_dies_is_restarted_and_health_says_so_meanwhile(
        make_app, fake_api, monkeypatch, caplog):
    """The loop dies from a bug (not a database error): its traceback is logged, /healthz
    is 503 naming the error while it is down, and once it runs again replies go out."""
    monkeypatch.setattr(supervisor, "RESTART_DELAYS", (0.2, 0.5, 1.0))  # (1 s ... 30 s)
    app = make_app(SENDER_IN_PROCESS="true", SENDER_POLL_SECONDS="0.05")
    broken = threading.Event()
    broken.set()
    real_lease_due = outbox.lease_due

    def lease_due(*args, **kwargs):
        if broken.is_set():
            raise RuntimeError("a bug in the sender")
        return real_lease_due(*args, **kwargs)

    monkeypatch.setattr(outbox, "lease_due", lease_due)
    client = app.test_client()
    try:
        with caplog.at_level(logging.ERROR, logger="app.jobs.supervisor"):
            health = wait_for(lambda: (r := client.get("/healthz")).status_code == 503 and r)
        assert "RuntimeError: a bug in the sender" in health.json["reason"]
        assert health.json["sender"].startswith("died")
        [died] = [r for r in caplog.records if "sender loop died" in r.getMessage()][:1]
        assert died.exc_info and died.exc_info[0] is RuntimeError  # the traceback is logged

        post_event(client, fake_api.message_added())
        broken.clear()  # the bug goes away: the restarted loop sends the queued reply
        wait_for(lambda: fake_api.created, timeout=10)  # the next restart is at most 1 s away
        assert client.get("/healthz").status_code == 200
    finally:
        services(app).supervisor.stop()


def test_a_loop_is_started_once_per_process():
    """start() on every request costs nothing after the first: one thread per loop."""
    runs = []

    class Loop:
        name = "probe"

        def __init__(self):
            self.wake = threading.Event()

        def run(self, stopping):
            runs.append(threading.get_ident())
            while not stopping.is_set():
                self.wake.wait()

        def interrupt(self):
            self.wake.set()

    supervisor = Supervisor([Loop()])
    for _ in range(5):
        supervisor.start()
    try:
        wait_for(lambda: runs)
        assert supervisor.report() == {"probe": "running"}
    finally:
        supervisor.stop()
    assert len(runs) == 1
    assert supervisor.report() == {"probe": "not started"}


def test_building_the_app_starts_no_thread(make_app):
    """Building the app starts no thread: background work starts only when asked
    (gunicorn's post_worker_init, the first request, or the sender command)."""
    before = {t.name for t in threading.enumerate()}
    app = make_app(SENDER_IN_PROCESS="true")
    assert {t.name for t in threading.enumerate()} - before <= {"watchdog"}
    assert services(app).supervisor.report()["sender"] == "not started"



def test_hourly_counts_start_and_stop_with_the_supervisor(app, client):
    """A serving process's supervisor runs the hourly counts' loop, with or without an
    in-process sender, from its first request; stopping it saves what was counted."""
    params = message_added()
    post_event(client, params)
    post_event(client, params)  # a duplicate: counted in memory
    assert services(app).supervisor.report() == {"hourly-counts": "running"}
    services(app).supervisor.stop()
    with services(app).db.read() as conn:
        saved = conn.execute(select(HourlyCount.name, HourlyCount.count)).all()
    assert [tuple(row) for row in saved] == [("duplicates", 1)]


_SERVE_FOREVER = """
import os, signal, sys, threading
from app.jobs import supervisor
from app.jobs.supervisor import Supervisor

class Loop:
    name = "probe"
    def __init__(self):
        self.wake = threading.Event()
    def run(self, stopping):
        blocked = signal.pthread_sigmask(signal.SIG_BLOCK, [])
        inner = []  # and a thread this loop starts, as the sender's executors are
        child = threading.Thread(target=lambda: inner.append(signal.pthread_sigmask(
            signal.SIG_BLOCK, [])))
        child.start(); child.join()
        print("loop blocks", sorted(s.name for s in blocked & {signal.SIGTERM, signal.SIGINT}),
              "child blocks", sorted(s.name for s in inner[0] & {signal.SIGTERM, signal.SIGINT}),
              flush=True)
        os.kill(os.getpid(), signal.SIGTERM)  # process-directed, sent from this thread
        while not stopping.is_set():
            self.wake.wait()
    def interrupt(self):
        self.wake.set()

Supervisor([Loop()]).serve_forever()
print("main blocks", sorted(s.name for s in signal.pthread_sigmask(signal.SIG_BLOCK, [])))
print("stopped")
"""


def test_sigterm_always_reaches_the_main_thread_of_serve_forever():
    """A dedicated sender stops on SIGTERM: its loops' threads (and theirs) block the
    stop signals, so the kernel hands them to the main thread, whose wait they wake
    (a SIGTERM taken by a background thread left the sender running for good)."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-c", _SERVE_FOREVER], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "loop blocks ['SIGINT', 'SIGTERM'] child blocks ['SIGINT', 'SIGTERM']",
        "main blocks []", "stopped"]
