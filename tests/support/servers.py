"""Real server processes for end-to-end tests: gunicorn on loopback, stopped at the end."""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clean_env(overrides: dict) -> dict:
    """The parent environment without any bot settings, plus `overrides`."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("TWILIO_", "DATABASE_", "SENDER_", "PUBLIC_", "PROXY_"))}
    env.update({k: str(v) for k, v in overrides.items()})
    return env


class Server:
    def __init__(self, process: subprocess.Popen, url: str, log_path: Path):
        self.process = process
        self.url = url
        self.log_path = log_path

    @property
    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def worker_pids(self) -> set[int]:
        """The gunicorn workers running now (the master's children)."""
        return {int(pid) for pid in subprocess.run(
            ["pgrep", "-P", str(self.process.pid)], capture_output=True, text=True).stdout.split()}

    # A deadline, not a pause: on a loaded machine gunicorn's master alone can take over
    # 20 s to import the app (seen at a load average of 20 on 2 cores).
    def wait_healthy(self, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise AssertionError(f"server not healthy within {timeout}s:\n{self.log}")

    def wait_workers(self, count: int, timeout: float = 60.0) -> None:
        """Wait until `count` workers have loaded the app and are about to serve: each logs
        "background work started pid=<pid>" from gunicorn's post_worker_init, after the
        app (and its schema check) loaded. Needs the in-process sender (the default)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log}")
            if len(set(re.findall(r"background work started pid=(\d+)", self.log))) >= count:
                return
            time.sleep(0.05)
        raise AssertionError(f"{count} workers not up within {timeout}s:\n{self.log}")

    def wait_booted(self, count: int, timeout: float = 20.0) -> None:
        """Wait until gunicorn has booted `count` workers, for any app (the benchmark's
        floor and naive apps log nothing of their own); a short pause lets the last one
        finish importing after its "Booting" line."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"server exited with {self.process.returncode}:\n{self.log}")
            if self.log.count("Booting worker") >= count:
                time.sleep(1.0)
                return
            time.sleep(0.05)
        raise AssertionError(f"{count} workers not booted within {timeout}s:\n{self.log}")

    def stop(self, sig=signal.SIGTERM, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@contextmanager
def gunicorn(env: dict, log_path: Path, *, workers: int = 2, args=(), app: str = "wsgi:app",
             cwd: Path = ROOT):
    """Run `gunicorn wsgi:app` from the repository root (or `cwd`), as a user would."""
    port = free_port()
    with open(log_path, "w") as log:
        process = subprocess.Popen(
            [str(BIN / "gunicorn"), app, "--bind", f"127.0.0.1:{port}",
             "--workers", str(workers), *args],
            cwd=cwd, env=clean_env(env), stdout=log, stderr=subprocess.STDOUT)
    server = Server(process, f"http://127.0.0.1:{port}", log_path)
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


def flask_cli(env: dict, *args, timeout: float = 60,
              cwd: Path = ROOT) -> subprocess.CompletedProcess:
    """Run `flask --app wsgi ARGS` from the repository root (or `cwd`)."""
    return subprocess.run([str(BIN / "flask"), "--app", "wsgi", *args], cwd=cwd,
                          env=clean_env(env), capture_output=True, text=True, timeout=timeout)


def checkout_copy(folder: Path) -> Path:
    """The code a server runs (the top-level modules and packages, tests and benchmark
    aside) copied into `folder`, to run it with a `.env` of its own: config.py reads
    the `.env` beside it."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in ROOT.iterdir():
        if path.suffix == ".py":
            shutil.copy2(path, folder / path.name)
        elif (path / "__init__.py").is_file() and path.name not in ("tests", "bench"):
            shutil.copytree(path, folder / path.name,
                            ignore=shutil.ignore_patterns("__pycache__"))
    return folder


def sender_process(env: dict, log_path: Path | None = None) -> subprocess.Popen:
    """Start a dedicated sender (`flask --app wsgi sender`) from the repository root."""
    stderr = open(log_path, "w") if log_path else subprocess.DEVNULL
    return subprocess.Popen([str(BIN / "flask"), "--app", "wsgi", "sender"], cwd=ROOT,
                            env=clean_env(env), stdout=subprocess.DEVNULL, stderr=stderr)


def reply_counts(database_url: str) -> dict[str, int]:
    """How many replies the database holds in each status, e.g. {"sent": 10}."""
    from sqlalchemy import func, select

    from app.store.models import Reply

    return dict(_query(database_url, select(Reply.status, func.count()).group_by(Reply.status)))


def unsent_replies(database_url: str) -> str:
    """The replies not sent, one line each (what a failing test shows)."""
    from sqlalchemy import select

    from app.store.models import Reply

    rows = _query(database_url, select(
        Reply.id, Reply.in_reply_to, Reply.conversation_sid, Reply.status, Reply.attempts,
        Reply.next_attempt_at, Reply.unsure_at, Reply.error_code, Reply.error_message,
    ).where(Reply.status != "sent").order_by(Reply.id))
    return "\n".join(map(str, rows)) or "(none unsent)"


def _query(database_url: str, statement) -> list:
    """Run one query on a connection of its own (the server's pool is not ours)."""
    from sqlalchemy import create_engine

    engine = create_engine(database_url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return conn.execute(statement).all()
    finally:
        engine.dispose()
