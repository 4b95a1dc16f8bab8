"""The development token: signs and checks webhooks in dry-run mode (no credentials).

Random per installation and kept in the instance folder, so every worker and the
`send-event` command agree on it, and nobody can guess it (or read it: 0600 in 0700).
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

FILENAME = "dev-auth-token"


def path(instance_dir: Path) -> Path:
    return instance_dir / FILENAME


def load_or_create(instance_dir: Path) -> str:
    """Return the stored token, creating it the first time (atomically: several workers)."""
    file = path(instance_dir)
    if not file.exists():
        instance_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        tmp = instance_dir / f".{FILENAME}.{os.getpid()}"
        # 0600 from the start: never readable by others, not even for a moment.
        fd = os.open(tmp, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
        with os.fdopen(fd, "w") as out:
            out.write(secrets.token_hex(16) + "\n")
        try:
            os.link(tmp, file)  # fails if another process got there first: use theirs
        except FileExistsError:
            pass
        finally:
            tmp.unlink()
    return file.read_text().strip()
