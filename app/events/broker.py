"""Brokers say "organization X has events up to id N"; the event log has the events.

The in-process broker hands announcements from the code that committed them to this
instance's fan-out loop, folding a burst into one wake-up. (The Redis broker does the
same across instances.)
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from typing import Any


class Wakeups:
    """The newest id per organization since the fan-out last looked, and a bell."""

    def __init__(self) -> None:
        self._pending: dict[int, int] = {}
        self._wake = asyncio.Event()
        # Set by LiveUpdates: "check the log for everything", "close these streams" and
        # "another instance's presence".
        self.on_connected: Callable[[], None] = lambda: None
        self.on_control: Callable[[dict[str, Any]], None] = lambda command: None
        self.on_presence: Callable[[dict[str, Any]], None] = lambda message: None

    def wake(self, org_id: int, event_id: int) -> None:
        """Have the fan-out catch `org_id` up to at least `event_id`."""
        self._pending[org_id] = max(self._pending.get(org_id, 0), event_id)
        self._wake.set()

    async def batches(self) -> AsyncIterator[dict[int, int]]:
        """Every wake-up: the newest announced id of each organization since the last."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, {}
            if batch:
                yield batch


class MemoryBroker(Wakeups):
    """One process: announcements go straight to this instance's fan-out."""

    kind = "memory"
    healthy = True

    def announce(self, org_id: int, event_id: int) -> None:
        """Note that `org_id` has events up to `event_id` (never blocks)."""
        self.wake(org_id, event_id)

    def control(self, command: dict[str, Any]) -> None:
        """Stream-closing commands need no travel within one process."""

    def share_presence(self, message: dict[str, Any]) -> None:
        """Presence needs no travel within one process either."""

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None
