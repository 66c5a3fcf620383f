"""The kinds of event the log holds: one closed set, named once.

A value is what the log stores in `task_event.type`, the live stream's `event:` name
and the JSON API's `"type"`. (`reset`, which tells a stream to reload, is a message of
the stream, not an event of the log: see app/live/streams.py.)
"""

from __future__ import annotations

from enum import StrEnum


class EventType(StrEnum):
    OWNERSHIP_TAKEN = "ownership_taken"
    OWNERSHIP_RELEASED = "ownership_released"
    STATUS_CHANGED = "status_changed"
    TASK_CREATED = "task_created"
    TASK_UPDATED = "task_updated"
    STORY_CREATED = "story_created"
    STORY_UPDATED = "story_updated"

    @property
    def about_story(self) -> bool:
        """A change to a story itself (its task, if any, is not what changed)."""
        return self in (EventType.STORY_CREATED, EventType.STORY_UPDATED)

    @property
    def is_edit(self) -> bool:
        """An edit of words or numbers, which names the fields it changed."""
        return self in (EventType.TASK_UPDATED, EventType.STORY_UPDATED)
