"""The instance folder holds the database and the development token: private to its user."""

from __future__ import annotations

import os
import stat

from app import create_app
from app.services import services


def test_a_dry_run_instance_is_private_under_a_permissive_umask(tmp_path):
    """A fresh dry-run app leaves its folder 0700 and every file in it 0600."""
    instance = tmp_path / "instance"
    old = os.umask(0o022)
    try:
        app = create_app({"INSTANCE_DIR": str(instance), "DATABASE_AUTO_UPGRADE": "true",
                          "SENDER_IN_PROCESS": "false"})
        db = services(app).db
        db.ping()
        with db.read() as conn:
            conn.exec_driver_sql("SELECT count(*) FROM replies").scalar()
    finally:
        os.umask(old)
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    files = {p.name: stat.S_IMODE(p.stat().st_mode) for p in instance.iterdir()}
    assert {"bot.sqlite3", "bot.sqlite3-wal", "dev-auth-token"} <= set(files)
    assert files == {name: 0o600 for name in files}
    db.engine.dispose()


def test_the_development_token_alone_makes_a_private_folder(tmp_path):
    """Created first (PostgreSQL in dry-run), the token still gets a 0700 folder, 0600 file."""
    from app.web import devtoken

    instance = tmp_path / "instance"
    old = os.umask(0o022)
    try:
        token = devtoken.load_or_create(instance)
    finally:
        os.umask(old)
    assert len(token) == 32 and devtoken.load_or_create(instance) == token
    assert stat.S_IMODE(instance.stat().st_mode) == 0o700
    assert [(p.name, stat.S_IMODE(p.stat().st_mode)) for p in instance.iterdir()] == [
        ("dev-auth-token", 0o600)]
