"""Migrations: they create the schema, and they agree with the models."""

import pytest
from sqlalchemy import inspect

from app.services import services
from tests.support.servers import flask_cli


def test_models_and_migrations_agree(app):
    """After `upgrade`, comparing the models with the database finds nothing missing."""
    assert services(app).db.schema_differences() == []


def test_upgrade_is_at_head_and_repeatable(app):
    db = services(app).db
    db.upgrade()  # a second upgrade is a no-op
    current, head = db.schema_revision()
    assert current == head
    tables = set(inspect(db.engine).get_table_names())
    assert {"processed_events", "replies", "delivery_receipts", "job_runs"} <= tables


def test_schema_head_is_alembics_head():
    """SCHEMA_HEAD (what a worker compares the database with, without Alembic) is the
    newest migration: a new migration must move it too."""
    from alembic.script import ScriptDirectory

    from app.store.database import SCHEMA_HEAD, alembic_config

    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert SCHEMA_HEAD == head, f"set SCHEMA_HEAD = {head!r} in app/store/database.py"


@pytest.mark.usefixtures("unmigrated")
def test_a_worker_on_a_current_schema_does_not_load_alembic(env):
    """Booting on an empty database migrates it (Alembic loaded); booting again on the
    current schema checks it with one query, and Alembic (~11 MB) stays unloaded. A
    PostgreSQL server does not load SQLite's driver either (~1 MB per worker)."""
    import subprocess
    import sys
    from pathlib import Path

    script = ("import sys; from app import create_app; create_app(); "
              "print('alembic' in sys.modules, 'sqlite3' in sys.modules)")

    def boots() -> str:
        return subprocess.run([sys.executable, "-c", script], env={**env, "PATH": "/usr/bin:/bin"},
                              capture_output=True, text=True, check=True,
                              cwd=Path(__file__).resolve().parents[2]).stdout.splitlines()[-1]

    on_sqlite = env["DATABASE_URL"].startswith("sqlite")
    assert boots() == f"True {on_sqlite}"
    assert boots() == f"False {on_sqlite}"


@pytest.mark.usefixtures("unmigrated")
def test_db_commands(env):
    """`db upgrade`, `db current` and `db check` work from the command line."""
    env = {**env, "DATABASE_AUTO_UPGRADE": "false"}
    before = flask_cli(env, "db", "current")
    assert before.returncode == 1 and "database: empty" in before.stdout
    upgraded = flask_cli(env, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert flask_cli(env, "db", "current").returncode == 0
    check = flask_cli(env, "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_a_worker_starts_on_a_current_schema_without_the_migration_lock(make_app, env):
    """A worker booting (or respawned) while another process holds the migration lock,
    or the database is stuck, must not wait for it when the schema is already current:
    gunicorn stops the whole server when a worker cannot boot."""
    import fcntl
    import threading

    if not env["DATABASE_URL"].startswith("sqlite"):
        pytest.skip("SQLite's migration lock file; PostgreSQL's advisory lock is shared")
    from app.store.database import sqlite_path

    make_app()  # the schema is created and current
    lock_path = sqlite_path(env["DATABASE_URL"]).parent / ".migrate.lock"
    with open(lock_path, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        started = []
        thread = threading.Thread(target=lambda: started.append(make_app()))
        thread.start()
        thread.join(10)
        fcntl.flock(held, fcntl.LOCK_UN)
    assert started, "the second app waited for the migration lock"


def test_a_second_engine_does_not_take_sqlites_locks_from_the_first(tmp_path):
    """Opening the database file outside SQLite (as creating it did) would drop this
    process's locks on it: another process closing its connection would then delete the
    WAL under this one, and what this one commits would no longer reach anybody else."""
    import subprocess
    import sys

    from app.store.database import Database
    from app.store.engine import make_engine

    path = tmp_path / "bot.sqlite3"
    db = Database(f"sqlite:///{path}")
    with db.transaction() as conn:  # a pooled connection stays open, in WAL mode
        conn.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    make_engine(f"sqlite:///{path}", 2.0, watched=False).dispose()  # as upgrade() does

    def count_elsewhere() -> int:
        script = ("import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
                  "print(c.execute('SELECT count(*) FROM t').fetchone()[0]); c.close()")
        return int(subprocess.run([sys.executable, "-c", script, str(path)], check=True,
                                  capture_output=True, text=True).stdout)

    for expected in (1, 2, 3):
        with db.transaction() as conn:
            conn.exec_driver_sql("INSERT INTO t VALUES (1)")
        assert count_elsewhere() == expected
    db.dispose()


@pytest.mark.usefixtures("unmigrated")
def test_0007_counts_retries_queued_before_it_as_unknown(database_url):
    """The code before 0007 did not record unknown outcomes: a retry it queued is unknown
    from its due time (later than its attempt began); a reply never tried, one requeued
    by an operator, and a lease in flight (taking it over marks it) are left alone."""
    from alembic import command
    from sqlalchemy import text

    from app.store.database import Database, alembic_config

    db = Database(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with db.engine.begin() as conn:
            command.upgrade(alembic_config(conn), "0006")
            for sid, status, attempts, retry_from in [
                    ("IMretry", "queued", 2, 0), ("IMnew", "queued", 0, 0),
                    ("IMrequeued", "queued", 3, 3), ("IMsending", "sending", 1, 0)]:
                conn.execute(text(
                    "INSERT INTO replies (in_reply_to, conversation_sid, author, status, "
                    "attempts, retry_from, next_attempt_at, created_at) VALUES (:sid, 'CH1', "
                    "'bot', :status, :attempts, :retry_from, '2026-12-03 12:00:05', "
                    "'2026-12-03 12:00:00')"),
                    {"sid": sid, "status": status, "attempts": attempts,
                     "retry_from": retry_from})
        db.upgrade()
        with db.read() as conn:
            unsure = dict(conn.execute(text("SELECT in_reply_to, unsure_at FROM replies")).all())
    finally:
        db.dispose()
    assert {sid: at is not None for sid, at in unsure.items()} == {
        "IMretry": True, "IMnew": False, "IMrequeued": False, "IMsending": False}
    assert str(unsure["IMretry"]).startswith("2026-12-03 12:00:05")


@pytest.mark.usefixtures("unmigrated")
def test_a_server_on_a_schema_behind_its_code_answers_503_until_it_is_upgraded(
        make_app, env, monkeypatch):
    """A worker started before `db upgrade` ran (on PostgreSQL the release phase does it)
    still starts, since gunicorn stops the whole server when a worker cannot boot, but
    takes no webhook into a database without its tables: a 503 that says why, /healthz
    too, and it serves as soon as someone upgrades, without a restart."""
    from app.store import database
    from tests.support.webhooks import message_added, post_event

    monkeypatch.setattr(database, "SCHEMA_RECHECK_SECONDS", 0.0)  # look at every request
    app = make_app(DATABASE_AUTO_UPGRADE="false")  # an empty database, not migrated
    client = app.test_client()
    params = message_added()
    refused = post_event(client, params)
    assert refused.status_code == 503 and refused.headers["Retry-After"]
    health = client.get("/healthz")
    assert health.status_code == 503
    assert health.get_json()["database"] == "schema behind"
    assert "flask --app wsgi db upgrade" in health.get_json()["reason"]

    upgraded = flask_cli({**env, "DATABASE_AUTO_UPGRADE": "false"}, "db", "upgrade")
    assert upgraded.returncode == 0, upgraded.stderr
    assert client.get("/healthz").status_code == 200
    assert post_event(client, params).status_code == 200  # Twilio's retry, taken now
    with services(app).db.read() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM replies").scalar() == 1


def test_a_hold_that_may_upgrade_migrates_at_the_next_connection(tmp_path):
    """The SQLite default whose start-up migration found no database: the first
    connection after it is reachable brings the schema up to date, then proceeds."""
    from app.store.database import SCHEMA_HEAD, Database

    db = Database(f"sqlite:///{tmp_path / 'late.sqlite3'}")
    db.hold("not migrated yet", upgrade=True)
    with db.transaction() as conn:
        assert conn.exec_driver_sql("SELECT count(*) FROM replies").scalar() == 0
    assert db.schema_revision() == (SCHEMA_HEAD, SCHEMA_HEAD)
    db.dispose()


@pytest.mark.parametrize("current, is_behind", [
    (None, True), ("0001", True), ("0010", True), ("0011", False), ("0012", False),
    ("a1b2c3", False)])
def test_only_a_schema_older_than_the_code_is_held_back(current, is_behind, monkeypatch):
    """A later release's revision (the code was rolled back) is served as before."""
    from app.store import database

    monkeypatch.setattr(database, "SCHEMA_HEAD", "0011")
    assert database.behind(current) is is_behind
