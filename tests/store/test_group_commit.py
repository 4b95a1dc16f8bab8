"""Group commit: units from many threads share transactions, each gets its own result."""

import logging
import threading

import pytest
from sqlalchemy import event, text

from app.services import services
from app.store.database import Database
from app.store.group_commit import GroupCommit
from tests.support.waiting import wait_for


def test_many_threads_each_get_their_own_result(app):
    db = services(app).db
    commit = GroupCommit(db)
    results = {}
    barrier = threading.Barrier(20)

    def work(i):
        barrier.wait()
        results[i] = commit.run(lambda conn: conn.execute(text(f"SELECT {i}")).scalar())

    threads = [threading.Thread(target=work, args=(i,)) for i in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: i for i in range(20)}


def test_a_failing_unit_fails_alone(app):
    """One unit raising does not take the units committed with it down."""
    db = services(app).db
    commit = GroupCommit(db)
    outcomes = {}
    barrier = threading.Barrier(6)

    def work(i):
        barrier.wait()
        try:
            outcomes[i] = commit.run(
                lambda conn: conn.execute(text("SELECT nope FROM nowhere")) if i == 3
                else conn.execute(text("INSERT INTO job_runs (name, last_run_at) "
                                       f"VALUES ('job{i}', '2026-01-01')")).rowcount)
        except Exception as exc:  # noqa: BLE001
            outcomes[i] = type(exc).__name__

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert outcomes[3] in ("OperationalError", "ProgrammingError")
    assert [outcomes[i] for i in (0, 1, 2, 4, 5)] == [1] * 5
    with db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_runs")).scalar() == 5


def test_errors_reach_the_caller(app):
    with pytest.raises(ZeroDivisionError):
        GroupCommit(services(app).db).run(lambda conn: 1 / 0)


def test_units_queued_behind_a_transaction_commit_together(app):
    """While one transaction runs, the units that queue up behind it share the next one."""
    from sqlalchemy import event

    from tests.support.waiting import wait_for

    db = services(app).db
    commit = GroupCommit(db)
    begins = []
    event.listen(db.engine, "begin", lambda conn: begins.append(1))
    inside, release = threading.Event(), threading.Event()

    def slow(conn):
        inside.set()
        release.wait(10)
        return "slow"

    def insert(i):
        return commit.run(lambda conn: conn.execute(text(
            f"INSERT INTO job_runs (name, last_run_at) VALUES ('q{i}', '2026-01-01')")).rowcount)

    first = threading.Thread(target=commit.run, args=(slow,))
    first.start()
    inside.wait(10)
    threads = [threading.Thread(target=insert, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    wait_for(lambda: commit.waiting == 10)  # all ten wait behind the slow unit
    release.set()
    for t in [first, *threads]:
        t.join()
    assert len(begins) == 2
    with db.transaction() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_runs")).scalar() == 10


def test_alone_a_unit_runs_in_the_callers_thread(app):
    commit = GroupCommit(services(app).db)
    assert commit.run(lambda conn: threading.current_thread()) is threading.current_thread()


def test_an_outage_fails_a_batch_in_one_attempt(tmp_path, caplog):
    """While the database cannot be reached, a batch fails at once (one attempt, not one
    per unit), and the failure is logged."""
    folder = tmp_path / "db"
    folder.mkdir()
    db = Database(f"sqlite:///{folder / 'bot.sqlite3'}")
    commit = GroupCommit(db)
    connects = []
    event.listen(db.engine, "do_connect", lambda *args: connects.append(1))
    inside, release = threading.Event(), threading.Event()

    def slow(conn):
        inside.set()
        release.wait(10)

    outcomes = []

    def select_one():
        try:
            outcomes.append(commit.run(lambda conn: conn.exec_driver_sql("SELECT 1").scalar()))
        except Exception as exc:  # noqa: BLE001
            outcomes.append(type(exc).__name__)

    first = threading.Thread(target=commit.run, args=(slow,))
    first.start()
    inside.wait(10)
    threads = [threading.Thread(target=select_one) for _ in range(10)]
    for t in threads:
        t.start()
    wait_for(lambda: commit.waiting == 10)
    # The outage: the open connection stays with the running unit; new ones cannot open.
    db.engine.dispose()
    folder.rename(tmp_path / "gone")
    connects.clear()
    with caplog.at_level(logging.WARNING, logger="app.store.group_commit"):
        release.set()
        for t in [first, *threads]:
            t.join(30)
    assert outcomes == ["DatabaseUnavailable"] * 10  # a connection that cannot open
    assert len(connects) == 1
    assert any(r.levelno == logging.WARNING and "DatabaseUnavailable" in r.getMessage()
               and "10" in r.getMessage() for r in caplog.records)


def test_a_batch_runs_its_units_in_order_of_their_key(app):
    """Units queued behind a leader run sorted by `order` (the conversation they lock), so
    batches of two processes take row locks in one order and cannot deadlock."""
    commit = GroupCommit(services(app).db)
    inside, release = threading.Event(), threading.Event()
    ran = []

    def hold(conn):
        inside.set()
        release.wait(10)

    leader = threading.Thread(target=commit.run, args=(hold,))
    leader.start()
    assert inside.wait(10)
    keys = ["CHc", "CHa", "CHd", "CHb"]
    threads = [threading.Thread(target=commit.run, args=(lambda conn, k=k: ran.append(k), k))
               for k in keys]
    for t in threads:
        t.start()
    wait_for(lambda: commit.waiting == len(keys))
    release.set()
    for t in (leader, *threads):
        t.join(10)
    assert ran == sorted(keys)
