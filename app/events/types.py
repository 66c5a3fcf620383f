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
    # The sprint cycle (app/tasks/cycle.py). A move names where its tasks were
    # (`sprint_id`), where they went (`to_sprint_id`, None: the backlog) and which.
    STORY_MOVED = "story_moved"
    SPRINT_STATUS_CHANGED = "sprint_status_changed"  # planning → active → review
    SPRINT_COMPLETED = "sprint_completed"  # review → completed, carrying the unfinished
    SPRINT_UPDATED = "sprint_updated"  # its name, goal or dates
    SPRINT_DELETED = "sprint_deleted"  # a planned one, its stories sent to the backlog
    # Keeping the board tidy (app/tasks/tidying.py). Each is a move in the sense of
    # `moves_tasks`: to another story (and its sprint), or out of every board and back.
    TASK_MOVED = "task_moved"  # `story_id` → `to_story_id`
    TASK_ARCHIVED = "task_archived"
    TASK_RESTORED = "task_restored"
    STORY_ARCHIVED = "story_archived"  # with its tasks (`task_ids`)
    STORY_RESTORED = "story_restored"

    @property
    def about_story(self) -> bool:
        """A change to a story itself (its task, if any, is not what changed)."""
        return self in (EventType.STORY_CREATED, EventType.STORY_UPDATED)

    @property
    def about_sprint(self) -> bool:
        """A change to a sprint itself (what it is, or its status): a board of it shows
        it in its header and, when completed, in what may be done there."""
        return self in (
            EventType.SPRINT_STATUS_CHANGED,
            EventType.SPRINT_COMPLETED,
            EventType.SPRINT_UPDATED,
            EventType.SPRINT_DELETED,
        )

    @property
    def reshapes_board(self) -> bool:
        """A change after which an open board reloads its groups and header: tasks or
        stories arrive or leave, or the sprint itself changed (a completed one turns
        read-only)."""
        return self.moves_tasks or self.about_sprint

    @property
    def moves_tasks(self) -> bool:
        """An event that takes tasks (`task_ids`) from one place to another: `sprint_id`
        to `to_sprint_id` (None: the backlog; for an archive or a restore, nowhere)."""
        return self in _MOVES

    @property
    def archives(self) -> bool:
        """Work leaving every board for the archive (`sprint_id`: where it was)."""
        return self in (EventType.TASK_ARCHIVED, EventType.STORY_ARCHIVED)

    @property
    def restores(self) -> bool:
        """Work coming back from the archive (`to_sprint_id`: where it went)."""
        return self in (EventType.TASK_RESTORED, EventType.STORY_RESTORED)

    @property
    def is_edit(self) -> bool:
        """An edit of words or numbers, which names the fields it changed."""
        return self in (EventType.TASK_UPDATED, EventType.STORY_UPDATED)


_MOVES = frozenset(
    {
        EventType.STORY_MOVED,
        EventType.SPRINT_COMPLETED,
        EventType.TASK_MOVED,
        EventType.TASK_ARCHIVED,
        EventType.TASK_RESTORED,
        EventType.STORY_ARCHIVED,
        EventType.STORY_RESTORED,
    }
)
