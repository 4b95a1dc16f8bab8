"""The auto-reply switch, stored in the database so that every instance obeys it (each
re-reads it at most every SWITCH_CACHE_SECONDS): turned on or off, and where it stands.
While it is off, webhooks are still verified, recorded and answered, decisions recorded."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlalchemy import Connection, select

from ..autoreply import Policy
from ..logs import kv
from ..pipeline import state
from ..services import Services
from ..store.models import Switch

log = logging.getLogger(__name__)
VALUES = ("on", "off")
OBEYED_WITHIN = state.SWITCH_CACHE_SECONDS  # seconds until every instance obeys a change


@dataclass(frozen=True)
class AutoReply:
    """Whether automated replies are on, and whether the runtime switch says so (`set`)
    or AUTO_REPLY_ENABLED does (the switch was never set)."""

    on: bool
    set: bool


def turn(bot: Services, value: str, *, by: str) -> None:
    """Set the switch to `value` (on or off) for every instance; log who did."""
    if value not in VALUES:
        raise ValueError(f"the auto-reply switch is on or off, not {value!r}")
    with bot.db.transaction() as conn:
        state.set_switch(conn, state.AUTOREPLY_SWITCH, value)
    log.info("auto-reply switched %s", kv(value=value, by=by))


def status(conn: Connection, policy: Policy) -> AutoReply:
    """Where the switch stands, as stored (not as this process's cache has it)."""
    stored = conn.execute(select(Switch.value).where(
        Switch.name == state.AUTOREPLY_SWITCH)).scalar()
    switch = None if stored is None else stored == "on"
    return AutoReply(on=policy.switch(switch), set=switch is not None)
