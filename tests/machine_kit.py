"""A base for Hypothesis state machines that drive the real database: each run gets its
own copy of a migrated SQLite file, the factories' scene in it, and an event loop."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from collections.abc import Coroutine
from pathlib import Path
from typing import Any

from hypothesis.stateful import RuleBasedStateMachine

from app.db import Database
from tests.factories import build_scene


class OnADatabaseCopy(RuleBasedStateMachine):
    template: Path  # a migrated SQLite file, set by the test before the run

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="machine-"))
        shutil.copy(self.template, self.folder / "db.sqlite")
        self.db = Database(f"sqlite+aiosqlite:///{self.folder / 'db.sqlite'}")
        self.scene = self.run(build_scene(self.db))
        self.org_id = self.scene.acme.org.id

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    def teardown(self) -> None:
        self.run(self.db.close())
        self.loop.close()
        shutil.rmtree(self.folder, ignore_errors=True)
