"""State reads: the autoreply switch, read by one thread at a time, within the deadline."""

import threading

from app.services import services
from app.store import deadline
from app.store.database import DatabaseUnavailable
from tests.support.timeouts import gives_up


def test_waiting_for_another_threads_switch_read_ends_at_the_deadline(make_app, monkeypatch):
    """While another thread reads the switch (stuck on a frozen database), a webhook
    waits for it only until its deadline, not for the database's whole timeout."""
    app = make_app(DATABASE_TIMEOUT="3.5")
    db, state = services(app).db, services(app).processor.state
    real_read, inside, release = db.run_read, threading.Event(), threading.Event()

    def stuck_read(query):
        inside.set()
        release.wait(3.0)  # unstuck before the timeout: a waiter past its deadline gets in
        return real_read(query)

    monkeypatch.setattr(db, "run_read", stuck_read)
    other = threading.Thread(target=state.autoreply_switch)
    other.start()
    try:
        assert inside.wait(10)

        def read():
            with deadline.within(0.1):
                return state.autoreply_switch()

        error, _took = gives_up(read, limit=10)
        assert isinstance(error, DatabaseUnavailable), error
    finally:
        release.set()
        other.join(10)
    assert state.autoreply_switch() is None  # read by the other thread: never set
