"""A request's deadline: every wait for the database draws from one budget.

DATABASE_TIMEOUT bounds each wait: a statement, a connection, a lock. A webhook waits
several times (for a free thread, a pooled or new connection, the group commit's turn,
SQLite's writer turn, each statement, the commit), and Twilio gives up after 5 s
whatever it waited on. So the web layer sets a deadline when the request arrived
(`start`), and each wait below ends by it: `until(timeout)` is when a wait that starts
now must end, at most `timeout` from now; `left(timeout)` is how long that is. A thread
without a deadline (the sender, the jobs, the CLI) waits `timeout` per wait.

A context variable, not a thread-local: it goes with the request's context and is
reset with a token, like the log context.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from contextvars import ContextVar, Token

_DEADLINE: ContextVar[float | None] = ContextVar("database_deadline", default=None)


def start(deadline: float) -> Token:
    """Bound this context's database waits by `deadline` (time.monotonic()) until `end`."""
    return _DEADLINE.set(deadline)


def end(token: Token) -> None:
    _DEADLINE.reset(token)


@contextmanager
def within(seconds: float):
    """Bound the block's database waits by `seconds` from now, all together."""
    token = start(time.monotonic() + seconds)
    try:
        yield
    finally:
        end(token)


def current() -> float | None:
    """This context's deadline, None without one."""
    return _DEADLINE.get()


def until(timeout: float) -> float:
    """When a wait starting now must end: `timeout` from now, or the deadline if sooner."""
    ends = time.monotonic() + timeout
    deadline = _DEADLINE.get()
    return ends if deadline is None or ends < deadline else deadline


def left(timeout: float) -> float:
    """How long a wait starting now may take (0 once the deadline has passed)."""
    deadline = _DEADLINE.get()
    if deadline is None:
        return timeout
    return max(0.0, min(timeout, deadline - time.monotonic()))


def expired() -> bool:
    deadline = _DEADLINE.get()
    return deadline is not None and deadline <= time.monotonic()
