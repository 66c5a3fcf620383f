"""Writers for tests of what happens under load: people taking and releasing tasks
through the API while something else goes on (an outage, a backup)."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import httpx


@dataclass
class Answer:
    started: float
    ended: float
    status: int
    retry_after: str | None
    body: str


@dataclass
class Writer:
    """Takes and releases one task as bob, over and over, noting every answer."""

    task_id: int
    answered: asyncio.Condition
    answers: list[Answer] = field(default_factory=list)
    acknowledged: int = 0  # changes answered 2xx: each is one event in the log

    async def run(self, http: httpx.AsyncClient, headers: dict[str, str], stop: asyncio.Event):
        holding = False
        while not stop.is_set():
            method = "DELETE" if holding else "PUT"
            started = time.monotonic()
            response = await http.request(
                method, f"/api/v1/tasks/{self.task_id}/ownership", headers=headers
            )
            self.answers.append(
                Answer(
                    started,
                    time.monotonic(),
                    response.status_code,
                    response.headers.get("Retry-After"),
                    response.text,
                )
            )
            if response.status_code == 200:
                self.acknowledged += 1
                holding = not holding
            elif response.status_code == 409:
                # A change cut off by the outage may have committed without its answer
                # reaching us: the task is already where we wanted it.
                holding = not holding
            async with self.answered:
                self.answered.notify_all()
            await asyncio.sleep(0.05)  # a person's pace, not a flood

    def count(self, status: int, after: float = 0.0) -> int:
        return sum(1 for a in self.answers if a.status == status and a.started >= after)


async def until(answered: asyncio.Condition, condition, within: float) -> None:  # type: ignore[no-untyped-def]
    """Wait until the writers' answers make `condition()` hold; fail after `within` s."""
    async with asyncio.timeout(within), answered:
        await answered.wait_for(condition)
