"""Another process that takes SQLite's writer turn and keeps it: the same flock file
`Database` queues writers on, then BEGIN IMMEDIATE. A test freezes it (SIGSTOP) to play
a writer that hangs, and kills it to end the outage."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

SCRIPT = """
import fcntl, sqlite3, sys, threading
path = sys.argv[1]
lock = open(path + ".writer-lock", "a")
fcntl.flock(lock, fcntl.LOCK_EX)
conn = sqlite3.connect(path, isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
threading.Event().wait()
"""


class LockHolder:
    def __init__(self, database_path: Path):
        self.process = subprocess.Popen([sys.executable, "-c", SCRIPT, str(database_path)],
                                        stdout=subprocess.PIPE, text=True)
        assert self.process.stdout.readline().strip() == "locked"

    def freeze(self) -> None:
        os.kill(self.process.pid, signal.SIGSTOP)

    def kill(self) -> None:
        if self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGCONT)
            self.process.kill()
        self.process.wait()
        self.process.stdout.close()

    def __enter__(self) -> LockHolder:
        return self

    def __exit__(self, *exc) -> None:
        self.kill()
