"""Waiting for something to happen, with a deadline instead of a pause."""

from __future__ import annotations

import time


def wait_for(condition, timeout: float = 10.0, interval: float = 0.01):
    """Poll `condition` until it is true; fail the test if `timeout` passes first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s")
