"""How many calls a sender may have in flight: its share, adapted to Twilio's answers.

Twilio bounds an account's concurrent REST calls (about 100; beyond that, 429 with
error 20429). A sender's *share* of TWILIO_CONCURRENCY_LIMIT (registry.py) is the most
it may ever hold in flight; within it, the *window* adapts like TCP's congestion window
(AIMD): a 429 halves it (once per round of calls: the 429s of calls already in flight
when it was halved do not halve it again), each success grows it by 1/(2 x window x live
senders) (about one call per two rounds across all senders: N senders probe the
account's limit no faster than one would, and slowly, since each probe past the limit
costs a 429), and a Retry-After pauses new calls until then. The window is logged
when its whole number changes.
"""

from __future__ import annotations

import logging
import time

from ..logs import kv

log = logging.getLogger(__name__)
GROWTH = 0.5  # calls added per round of successful calls, across all senders


class Window:
    """One process's limit on calls in flight. Not thread-safe: the sender's event loop
    is its only user."""

    def __init__(self, share: int = 0, *, bound: int | None = None, clock=time.monotonic):
        self.share = share  # from the registry: never hold more than this
        self.bound = bound  # SENDER_CONCURRENCY, an optional cap per process
        self.senders = 1  # live senders sharing the limit (from the registry)
        self._clock = clock
        self._window = float(self._cap())  # starts at the full share: no slow start
        self._decreased_at = float("-inf")
        self.paused_until = float("-inf")
        self._logged = int(self._window)

    def _cap(self) -> int:
        return self.share if self.bound is None else min(self.share, self.bound)

    @property
    def limit(self) -> int:
        """Calls that may be in flight now (0 while paused by a Retry-After)."""
        if self._clock() < self.paused_until:
            return 0
        return min(self._cap(), max(1, int(self._window)))

    def resize(self, share: int, senders: int = 1, peers_window: int | None = None) -> None:
        """The registry's new share: the window keeps its size, within the new cap (a
        grown share is filled by successes, or at once if the window was at the cap).
        A first share starts at the other senders' window when they have one: a sender
        joining while Twilio throttles starts where the others found the limit."""
        self.senders = max(1, senders)
        if share == self.share:
            return
        first = self.share == 0 and self._window == 0
        at_cap = self._window >= self._cap()
        self.share = share
        cap = self._cap()
        self._window = float(cap) if at_cap else min(self._window, float(cap))
        if first and peers_window:
            self._window = float(max(1, min(cap, peers_window)))
        self._report("share changed")

    def succeeded(self) -> None:
        cap = self._cap()
        if self._window < cap:
            step = GROWTH / (max(self._window, 1.0) * self.senders)
            self._window = min(float(cap), self._window + step)
            self._report("calls succeed")

    def throttled(self, started_at: float, retry_after: float | None) -> None:
        """A call begun at `started_at` (this clock) was answered 429."""
        now = self._clock()
        if retry_after:
            self.paused_until = max(self.paused_until, now + retry_after)
        if started_at < self._decreased_at:
            return  # in flight before the last decrease: already accounted for
        self._decreased_at = now
        self._window = max(1.0, self._window / 2)
        self._report("Twilio answered 429", retry_after=retry_after)

    def _report(self, why: str, **fields) -> None:
        whole = int(self._window)
        if whole != self._logged:
            self._logged = whole
            log.info("sending concurrency %s", kv(
                concurrency=whole, share=self.share, bound=self.bound, why=why, **fields))
