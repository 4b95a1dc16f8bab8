"""Fork safety: a child forked while the parent is busy writing starts with its own locks."""

from __future__ import annotations

import os
import threading
import time
import traceback

from sqlalchemy.exc import SQLAlchemyError

from app.store.database import Database
from tests.support.timeouts import COUNT_FOR_LONG


def wait_child(pid: int, limit: float) -> int:
    """Return the child's exit code; kill it and fail if it is not done within `limit`."""
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError(f"the child was still running after {limit} s")


def test_a_child_forked_while_a_thread_has_the_writer_turn_can_write(tmp_path):
    """The parent's thread holding the writer turn (thread lock and lock file) does not
    exist in the child: the child writes as soon as the parent lets go, and its
    statements are still watched (a long one is cut).

    The turn, not an open SQLite transaction: SQLite forbids using, in a child, locks
    taken by connections of the parent (gunicorn forks before any transaction)."""
    db = Database(f"sqlite:///{tmp_path / 'bot.sqlite3'}", timeout=1.0)
    db.ping()
    inside, release = threading.Event(), threading.Event()

    def hold():
        with db.writer_turn():
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    inside.wait(10)
    pid = os.fork()
    if pid == 0:  # the child: exit 0 only if everything worked
        code = 1
        try:
            assert db.group_commit.run(lambda conn: conn.exec_driver_sql("SELECT 7").scalar()) == 7
            db.ping()
            try:
                with db.read() as conn:
                    conn.exec_driver_sql(COUNT_FOR_LONG).scalar()
            except SQLAlchemyError:
                code = 0
        except BaseException:
            traceback.print_exc()
        finally:
            os._exit(code)
    release.set()  # the parent lets go of the turn: the child's comes
    holder.join()
    assert wait_child(pid, limit=8) == 0
