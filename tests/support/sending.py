"""Sending in the test's own thread, one reply after the other: what the sender's loop
does, driven through the sender's public parts (its outbox lease, its attempts, its API
client), so that a test knows when every due reply has been tried."""

from __future__ import annotations

import asyncio
import threading
import time

from app.delivery import outbox
from app.delivery.pacing import Window


def take(sender, limit: int = 1) -> list[outbox.LeasedReply]:
    """Lease up to `limit` due replies as `sender` does (lost leases included), without
    Twilio's pace between a conversation's replies."""
    with sender.db.transaction() as conn:
        return outbox.lease_due(conn, limit, sender.lease_seconds, expired=True, pace=0.0)


def send(sender, item: outbox.LeasedReply) -> None:
    """Send one leased reply now and record the outcome."""
    asyncio.run(_send_one(sender, item))


def run_until_idle(sender) -> int:
    """Send everything due now, one by one, waiting out the settle time of the replies
    found unsure (an earlier create may still land); return how many attempts were made
    (looks that waited are none)."""
    return asyncio.run(_until_idle(sender))


def _window(sender) -> Window:
    return Window(sender.limit, bound=sender.bound)


async def _send_one(sender, item: outbox.LeasedReply) -> None:
    api = sender.make_api()
    try:
        await sender.attempts.send(api, item, _window(sender), threading.Event())
    finally:
        await api.close()


async def _until_idle(sender) -> int:
    api, window, stopping, tried = sender.make_api(), _window(sender), threading.Event(), 0
    settling: dict[int, float] = {}  # reply id -> when it is due again (monotonic)
    try:
        while True:
            leased = await asyncio.to_thread(take, sender, max(1, window.limit))
            for item in leased:
                settling.pop(item.id, None)
                result = await sender.attempts.send(api, item, window, stopping)
                if result.look_again_in is None:
                    tried += 1
                else:
                    settling[item.id] = time.monotonic() + result.look_again_in
            if leased:
                continue
            # Nothing due: wait for the next look of a reply still settling (one not due
            # a second after its time was taken by someone else: forget it).
            now = time.monotonic()
            settling = {k: due for k, due in settling.items() if due > now - 1.0}
            if not settling:
                return tried
            await asyncio.sleep(max(0.05, min(settling.values()) - now))
    finally:
        await api.close()
