"""Calls that may hang: run one with a limit and see what it raised and how long it took;
a statement that runs for long, to be cut."""

from __future__ import annotations

import threading
import time

COUNT_FOR_LONG = ("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c "
                  "WHERE x < 50000000) SELECT count(*) FROM c")


def gives_up(call, limit: float) -> tuple[BaseException | None, float]:
    """Run `call` in a thread; return (what it raised, seconds taken); fail after `limit`."""
    outcome = {}

    def run():
        started = time.monotonic()
        try:
            call()
        except BaseException as exc:  # noqa: BLE001 - the test looks at it
            outcome["error"] = exc
        outcome["took"] = time.monotonic() - started

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(limit)
    assert "took" in outcome, f"still waiting after {limit} s"
    return outcome.get("error"), outcome["took"]


def bound(seconds: float) -> float:
    """How long a wait bounded by `seconds` may take on a loaded 2-core machine: a wide
    margin, still far from a wait that never ends or one that waits for a longer timeout."""
    return 3 * seconds + 3
