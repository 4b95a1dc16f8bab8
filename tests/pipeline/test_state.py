"""State reads: the autoreply switch, read by one thread at a time, within the deadline."""

from app.services import services
from app.store import deadline
from app.store.database import DatabaseUnavailable
from tests.store.test_timeouts import gives_up


def test_waiting_for_another_threads_switch_read_ends_at_the_deadline(app):
    """While another thread reads the switch (stuck on a frozen database), a webhook
    waits for it only until its deadline."""
    state = services(app).processor.state
    state._lock.acquire()  # another thread's read, under way
    try:
        def read():
            with deadline.within(0.3):
                return state.autoreply_switch()

        error, took = gives_up(read, limit=10)
        assert isinstance(error, DatabaseUnavailable) and took < 2.0, (error, took)
    finally:
        state._lock.release()
    assert state.autoreply_switch() is None  # read again, never set
