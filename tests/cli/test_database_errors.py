"""A database that cannot be used ends any command with one line and a non-zero exit
status, not a traceback: what Heroku's release phase and systemd's ExecStartPre show."""

from __future__ import annotations

import pytest

from app import create_app
from app.services import services
from tests.support.servers import flask_cli, free_port

COMMANDS = [
    ["db", "upgrade"], ["db", "current"], ["db", "check"], ["replies", "stats"],
    ["replies", "failed"], ["replies", "requeue", "--all"], ["events", "stats"],
    ["why", "IM" + "0" * 32], ["autoreply", "status"], ["autoreply", "off"],
    ["rules", "try", "hello"], ["prune"],
]


def closed_postgres() -> str:
    """A PostgreSQL URL (with a password) on a port nothing listens on."""
    return f"postgresql://bot:s3cret@127.0.0.1:{free_port()}/bot"


def not_a_database(tmp_path) -> str:
    path = tmp_path / "bot.sqlite3"
    path.write_text("this is not an SQLite database\n" * 100)
    return f"sqlite:///{path}"


@pytest.fixture(params=["postgresql-down", "sqlite-not-a-database"])
def broken_runner(request, tmp_path):
    url = closed_postgres() if request.param == "postgresql-down" else not_a_database(tmp_path)
    app = create_app({"INSTANCE_DIR": str(tmp_path / "instance"), "DATABASE_URL": url,
                      "SENDER_IN_PROCESS": "false"})
    yield app.test_cli_runner()
    services(app).db.dispose()


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_each_command_says_in_one_line_that_the_database_cannot_be_used(broken_runner, args):
    """Exit status 1, one line naming the database (never its password) and the fix."""
    result = broken_runner.invoke(args=args)
    assert result.exit_code == 1, result.output
    assert result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith("error: the database ") and "cannot be used: " in line
    assert "-- fix: check DATABASE_URL" in line
    assert "s3cret" not in line and "Traceback" not in result.output


def test_db_upgrade_with_postgresql_down_prints_one_line(tmp_path):
    """The release step itself (`flask --app wsgi db upgrade`, a real process): one line
    on stderr, exit status 1."""
    url = closed_postgres()
    result = flask_cli({"INSTANCE_DIR": tmp_path, "DATABASE_URL": url}, "db", "upgrade")
    assert result.returncode == 1 and result.stdout == ""
    [line] = result.stderr.splitlines()
    assert line.startswith(f"error: the database {url.replace('s3cret', '***')} cannot be "
                           "used: ") and "Connection refused" in line


def test_a_sqlite_file_in_a_missing_folder_is_refused_in_one_line(tmp_path):
    """A path whose folder does not exist is a configuration error (exit status 3, one
    line); the folder is not created: a typo must not start an empty database."""
    folder = tmp_path / "no-such-folder"
    env = {"INSTANCE_DIR": tmp_path / "instance", "DATABASE_URL": f"sqlite:///{folder}/bot.db"}
    for args in (["db", "upgrade"], ["replies", "stats"]):
        result = flask_cli(env, *args)
        assert result.returncode == 3 and result.stdout == ""
        assert result.stderr.splitlines() == [
            f"cannot start: invalid configuration: DATABASE_URL: the folder {folder} does not "
            "exist (create it, or correct the path)"]
    assert not folder.exists()


def test_a_file_that_cannot_be_created_is_refused_in_one_line(tmp_path):
    """A folder that exists but takes no file (here /proc), for the SQLite database or
    the development token: one line, exit status 3."""
    env = {"INSTANCE_DIR": tmp_path, "DATABASE_URL": "sqlite:////proc/bot.sqlite3"}
    result = flask_cli(env, "db", "upgrade")
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "cannot start: invalid configuration: DATABASE_URL: cannot create the SQLite database "
        "/proc/bot.sqlite3: No such file or directory"]
    env = {"INSTANCE_DIR": "/proc/bot", "DATABASE_URL": f"sqlite:///{tmp_path}/bot.sqlite3"}
    result = flask_cli(env, "db", "upgrade")
    assert result.returncode == 3
    assert result.stderr.splitlines() == [
        "cannot start: invalid configuration: INSTANCE_DIR: cannot keep the development token "
        "in /proc/bot: No such file or directory"]


@pytest.mark.usefixtures("unmigrated")
def test_a_database_without_its_schema_says_to_upgrade(env, make_app):
    """Reachable but never migrated (PostgreSQL is not migrated at start-up): the line
    says to run `db upgrade`, which then works."""
    runner = make_app(DATABASE_AUTO_UPGRADE="false").test_cli_runner()
    result = runner.invoke(args=["replies", "stats"])
    assert result.exit_code == 1, result.output
    [line] = result.stderr.splitlines()
    assert "has no schema yet" in line and line.endswith("-- fix: flask --app wsgi db upgrade")
    assert runner.invoke(args=["db", "upgrade"]).exit_code == 0
    assert runner.invoke(args=["replies", "stats"]).exit_code == 0
