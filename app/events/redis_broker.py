"""Cross-instance announcements over Redis pub/sub.

Redis is at-most-once: a message published while an instance is disconnected is gone.
So Redis only ever says "organization X has events up to id N" (never the events), and
every time an instance (re)connects it asks its fan-out to catch up from the log for
every organization it serves. Changes keep succeeding while Redis is down; their events
reach every stream once it is back. The same channel family carries "close these
streams" commands (sign-out, removal, revoked token), which every instance applies, and
each instance's presence (see app/live/presence.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any

import redis.asyncio as redis

from app.events.broker import Wakeups

log = logging.getLogger(__name__)

EVENTS = "sprintboard:events"
CONTROL = "sprintboard:control"
PRESENCE = "sprintboard:presence"
MAX_BACKOFF = 10.0


class RedisBroker(Wakeups):
    kind = "redis"

    def __init__(self, url: str) -> None:
        super().__init__()
        self.url = url
        self.healthy = False
        self._subscribed = False  # listening now (publishing may still fail now and then)
        self._client: redis.Redis | None = None
        self._listener: asyncio.Task[None] | None = None
        self._publishing: set[asyncio.Task[Any]] = set()

    async def start(self) -> None:
        self._client = redis.Redis.from_url(
            self.url, health_check_interval=5, socket_connect_timeout=2, socket_timeout=5
        )
        self._listener = asyncio.create_task(self._listen(), name="sprintboard-redis")

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._listener
        if self._publishing:
            await asyncio.gather(*self._publishing, return_exceptions=True)
        if self._client is not None:
            await self._client.aclose()

    # --- announcing ------------------------------------------------------------------

    def announce(self, org_id: int, event_id: int) -> None:
        """Wake this instance's fan-out at once, and tell the others through Redis."""
        self.wake(org_id, event_id)
        self._publish(EVENTS, f"{org_id}:{event_id}")

    def control(self, command: dict[str, Any]) -> None:
        """Ask every instance (this one included, by its caller) to close some streams."""
        self._publish(CONTROL, json.dumps(command))

    def share_presence(self, message: dict[str, Any]) -> None:
        """Tell the other instances about this one's presence (best effort: each says
        all it has every few seconds, so a lost message heals itself). While Redis is
        away there is nobody to tell: on reconnecting, the instance says all it has."""
        if self._subscribed:
            self._publish(PRESENCE, json.dumps(message))

    def _publish(self, channel: str, payload: str) -> None:
        task = asyncio.create_task(self._send(channel, payload))
        self._publishing.add(task)
        task.add_done_callback(self._publishing.discard)

    async def _send(self, channel: str, payload: str) -> None:
        assert self._client is not None
        try:
            await self._client.publish(channel, payload)
        except (redis.RedisError, OSError) as error:
            # The change is committed and logged; the others catch up when Redis is back.
            self.healthy = False
            log.warning("could not publish to Redis (%s); instances will catch up", error)

    # --- listening -------------------------------------------------------------------

    async def _listen(self) -> None:
        delay = 0.2
        while True:
            try:
                assert self._client is not None
                async with self._client.pubsub() as pubsub:
                    await pubsub.subscribe(EVENTS, CONTROL, PRESENCE)
                    self.healthy = self._subscribed = True
                    if delay > 0.2:
                        log.info("Redis is back; catching up from the event log")
                    delay = 0.2
                    # Anything published while we were away is lost: read the log instead.
                    self.on_connected()
                    async for message in pubsub.listen():
                        self._handle(message)
            except asyncio.CancelledError:
                raise
            except (redis.RedisError, OSError) as error:
                self.healthy = self._subscribed = False
                log.warning("Redis unreachable (%s); retrying in %.1f s", error, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, MAX_BACKOFF)

    def _handle(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        channel = (
            message["channel"].decode()
            if isinstance(message["channel"], bytes)
            else message["channel"]
        )
        data = (
            message["data"].decode() if isinstance(message["data"], bytes) else str(message["data"])
        )
        try:
            if channel == EVENTS:
                org, _, event = data.partition(":")
                self.wake(int(org), int(event))
            elif channel == CONTROL:
                self.on_control(json.loads(data))
            elif channel == PRESENCE:
                self.on_presence(json.loads(data))
        except (ValueError, TypeError, KeyError):
            log.warning("ignored a malformed Redis message on %s", channel)
