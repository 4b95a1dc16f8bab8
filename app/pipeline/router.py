"""Router: handlers register per event type; dispatch calls the ones that match.

A handler is `handler(event, context) -> Outcome`: it decides, in the request's own
thread, and returns what it does and why. It may read state through `context.state`
(single statements, never queued behind writers), sees only the auto-reply policy
(`context.policy`: who the bot and the agents are, the rules; no credentials), leaves its database writes with `context.on_claim(...)`
and whatever it wants to say afterwards with `context.after_commit(...)`. The writes
run only if the event is claimed, in the claim's transaction; the after-commit calls
run only once that transaction is committed. Mistakes (an unknown event name) fail at
registration, not at dispatch.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy import Connection

from ..autoreply import Policy
from .events import KNOWN_EVENTS, Event
from .outcome import Outcome
from .state import StateReader

Handler = Callable[[Event, "Context"], Outcome]


# A write to make once the event is claimed, in the same transaction. It may return a
# note for the outcome (something only the database could tell), or a new Outcome when
# what it found under the transaction's locks changed the decision (None: nothing).
# It may run more than once (a batch that failed is redone), so it only writes.
Effect = Callable[[Connection], "str | Outcome | None"]


@dataclass
class Context:
    """What a handler may use: the auto-reply policy, reads of state, and places to leave
    its writes and what to do once they are committed."""

    state: StateReader
    policy: Policy
    effects: list[Effect] = field(default_factory=list)
    after: list[Callable[[], None]] = field(default_factory=list)

    def on_claim(self, effect: Effect) -> None:
        self.effects.append(effect)

    def after_commit(self, callback: Callable[[], None]) -> None:
        self.after.append(callback)


class Router:
    def __init__(self) -> None:
        self._handlers: dict[str, list[tuple[Handler, tuple[str, ...]]]] = defaultdict(list)

    def register(self, event_type: str, *, requires: tuple[str, ...] = ()):
        """Register the decorated handler for `event_type`; it needs the `requires` fields."""
        if event_type not in KNOWN_EVENTS:
            raise ValueError(f"unknown Conversations event type: {event_type!r}")

        def decorator(handler: Handler) -> Handler:
            self._handlers[event_type].append((handler, tuple(requires)))
            return handler

        return decorator

    def add(self, other: Router) -> None:
        """Take over the handlers of another router (one per feature module)."""
        for event_type, handlers in other._handlers.items():
            self._handlers[event_type].extend(handlers)

    def handles(self, event_type: str) -> bool:
        return event_type in self._handlers

    def validate(self, event: Event) -> None:
        """Raise MissingField if a handler for this event needs a field it lacks."""
        for _handler, requires in self._handlers.get(event.type, ()):
            for name in requires:
                event.require(name)

    def dispatch(self, event: Event, context: Context) -> list[Outcome]:
        return [handler(event, context) for handler, _ in self._handlers.get(event.type, ())]
