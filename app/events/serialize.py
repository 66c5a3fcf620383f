"""The JSON shape of an event (the replaced system's fields, plus id and organization)."""

from __future__ import annotations

from typing import Any

from app.events.types import EventType
from app.models import TaskEvent
from app.timefmt import iso


def _sid(value: int | None) -> str | None:
    return None if value is None else str(value)


def event_json(event: TaskEvent) -> dict[str, Any]:
    """`{"id", "organization_id", "type", "task_id", …, "timestamp"}` for one event; a
    move says from where to where, a completion where its unfinished tasks went."""
    out = _common(event)
    if event.type == EventType.STORY_MOVED:
        out["from_sprint_id"] = _sid(event.sprint_id)
        out["to_sprint_id"] = _sid(event.to_sprint_id)
        out["task_ids"] = [str(t) for t in event.task_ids or ()]
    elif event.type == EventType.SPRINT_COMPLETED:
        out["carried_to_sprint_id"] = _sid(event.to_sprint_id)
        out["task_ids"] = [str(t) for t in event.task_ids or ()]
    elif event.type == EventType.TASK_MOVED:
        out["story_id"] = _sid(event.to_story_id)  # where it is now, as for every event
        out["from_story_id"] = _sid(event.story_id)
        out["to_story_id"] = _sid(event.to_story_id)
        out["from_sprint_id"] = _sid(event.sprint_id)
        out["to_sprint_id"] = _sid(event.to_sprint_id)
    elif EventType(event.type).archives or EventType(event.type).restores:
        # Archived from `sprint_id`; restored into `to_sprint_id` (null: the backlog).
        if EventType(event.type).restores:
            out["sprint_id"] = _sid(event.to_sprint_id)
        out["task_ids"] = [str(t) for t in event.task_ids or ()]
    if event.reason:
        out["reason"] = event.reason
    if event.fields:
        out["fields"] = event.fields.split(",")
    return out


def _common(event: TaskEvent) -> dict[str, Any]:
    return {
        "id": event.id,
        "organization_id": str(event.org_id),
        "type": event.type,
        "task_id": _sid(event.task_id),
        "story_id": _sid(event.story_id),
        "sprint_id": _sid(event.sprint_id),
        "owner_user_id": _sid(event.owner_id),
        "previous_owner_user_id": _sid(event.previous_owner_id),
        "old_status": event.old_status,
        "new_status": event.new_status,
        "changed_by_user_id": _sid(event.actor_id),
        "title": event.title,
        "timestamp": iso(event.created_at),
    }
