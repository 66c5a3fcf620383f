"""Request and response bodies of the JSON API, for validation and the OpenAPI document."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field

from app.events.types import EventType

StatusValue = Literal["available", "owned", "inprogress", "completed"]


class ErrorDetail(BaseModel):
    code: str
    message: str


class ErrorBody(BaseModel):
    error: ErrorDetail


class OrganizationOut(BaseModel):
    id: str
    slug: str
    name: str
    role: Literal["owner", "member", "viewer"]


class UserOut(BaseModel):
    id: str
    email: str
    name: str


class MeOut(UserOut):
    organizations: list[OrganizationOut]


class TaskOut(BaseModel):
    """A task, snake_case as the replaced API."""

    id: str
    story_id: str
    title: str
    description: str
    acceptance_criteria_refs: list[str]
    status: StatusValue
    owner_user_id: str | None
    estimated_hours: int | None
    created_at: str
    updated_at: str
    owned_at: str | None
    completed_at: str | None
    archived: bool


class TaskEdit(BaseModel):
    """The fields a PATCH may change; those left out stay as they are."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    acceptance_criteria_refs: list[str] | None = Field(default=None, max_length=50)
    estimated_hours: int | None = Field(default=None, ge=1, le=40)


class CriterionOut(BaseModel):
    label: str
    given: str
    when: str
    then: str


class StoryOut(BaseModel):
    """A story, with its acceptance criteria."""

    id: str
    sprint_id: str | None
    title: str
    description: str
    points: int
    acceptance_criteria: list[CriterionOut]
    created_at: str
    updated_at: str


class CriterionIn(BaseModel):
    given: str = Field(max_length=500)
    when: str = Field(max_length=500)
    then: str = Field(max_length=500)


class StoryEdit(BaseModel):
    """The fields a PATCH may change. `acceptance_criteria` lists the story's criteria
    in order: the first ones rewrite AC1, AC2, … (none may be left out: criteria keep
    their labels), any beyond are added."""

    title: str | None = Field(default=None, min_length=1, max_length=200)
    description: str | None = Field(default=None, max_length=10_000)
    points: int | None = Field(default=None, ge=1, le=8)
    acceptance_criteria: list[CriterionIn] | None = Field(default=None, max_length=50)


class PreconditionBody(BaseModel):
    """412: the resource changed since the ETag sent; `current` is it now."""

    error: ErrorDetail
    current: dict[str, object]


class IfMatch(BaseModel):
    """The `ETag` of the copy the change is based on (required)."""

    if_match: str | None = Field(default=None, alias="If-Match")


class TaskList(BaseModel):
    tasks: list[TaskOut]


class NewTask(BaseModel):
    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default="", max_length=10_000)
    acceptance_criteria_refs: list[str] = Field(default_factory=list, max_length=50)
    estimated_hours: int | None = Field(default=None, ge=1, le=40)


class Created(BaseModel):
    task_id: str


class StatusChange(BaseModel):
    status: StatusValue


class ActionResult(BaseModel):
    success: bool
    message: str
    task: TaskOut


class EventOut(BaseModel):
    id: int
    organization_id: str
    type: EventType
    task_id: str | None
    story_id: str | None
    sprint_id: str | None
    owner_user_id: str | None
    previous_owner_user_id: str | None
    old_status: str | None
    new_status: str | None
    changed_by_user_id: str | None
    title: str
    timestamp: str
    # Moves and edits say more (see app/events/serialize.py).
    from_sprint_id: str | None = None
    to_sprint_id: str | None = None
    carried_to_sprint_id: str | None = None
    task_ids: list[str] | None = None
    fields: list[str] | None = None


class History(BaseModel):
    events: list[EventOut]


class SprintOut(BaseModel):
    """The board's header, camelCase as the replaced board API."""

    id: str
    name: str
    goal: str
    startDate: str
    endDate: str
    daysRemaining: int
    status: str
    totalStories: int
    totalTasks: int
    completedTasks: int
    progressPercentage: int


class SprintListItem(BaseModel):
    id: str
    name: str
    goal: str
    status: Literal["planning", "active", "review", "completed"]
    startDate: str
    endDate: str


class SprintList(BaseModel):
    sprints: list[SprintListItem]


class BurndownDayOut(BaseModel):
    date: str
    remaining: int | None
    ideal: float


class BurndownOut(BaseModel):
    sprintId: str
    total: int
    remaining: int
    days: list[BurndownDayOut]


class ViewerOut(BaseModel):
    userId: str
    name: str
    taskId: str | None
    storyId: str | None
    editing: bool


class PresenceOut(BaseModel):
    viewers: list[ViewerOut]


class BoardTaskOut(BaseModel):
    id: str
    storyId: str
    storyTitle: str
    title: str
    description: str
    status: StatusValue
    ownerUserId: str | None
    ownerName: str | None
    acceptanceCriteriaRefs: list[str]
    estimatedHours: int | None
    createdAt: str
    updatedAt: str


class GroupOut(BaseModel):
    count: int
    tasks: list[str]


class BoardOut(BaseModel):
    sprint: SprintOut
    tasks: list[BoardTaskOut]
    groups: dict[str, GroupOut]


class BoardArgs(BaseModel):
    status: str | None = None
    groupBy: Literal["story", "status"] = "story"


# ---------------------------------------------------------------- the sprint cycle --


class NewStory(BaseModel):
    """A story for a sprint in planning or under way (`sprintId`), or for the backlog
    (null or left out)."""

    title: str = Field(min_length=1, max_length=200)
    description: str | None = Field(default="", max_length=10_000)
    points: int | None = Field(default=None, ge=1, le=8)
    acceptanceCriteria: list[CriterionIn] = Field(default_factory=list, max_length=50)
    sprintId: str | int | None = None


class StorySprint(BaseModel):
    """Where the story goes: a sprint in planning or under way, or null (the backlog)."""

    sprintId: str | int | None


class BacklogStoryOut(BaseModel):
    id: str
    title: str
    points: int
    position: int
    tasks: list[TaskOut]


class BacklogOut(BaseModel):
    stories: list[BacklogStoryOut]


class CompleteIn(BaseModel):
    """Where the unfinished tasks go: a sprint's id, "new", or "backlog"."""

    carryTo: str | int


class CompleteOut(BaseModel):
    sprint: SprintListItem
    carriedOver: list[str]
    carriedTo: str | None


class FigureOut(BaseModel):
    tasks: int
    points: int


class ReportLists(BaseModel):
    committed: list[str]
    added: list[str]
    removed: list[str]
    completed: list[str]
    carriedOver: list[str]


class ReportOut(BaseModel):
    """A sprint's report: frozen once it completed (`final`), "so far" before."""

    sprintId: str
    final: bool
    started: bool
    committed: FigureOut
    added: FigureOut
    removed: FigureOut
    completed: FigureOut
    carriedOver: FigureOut
    lists: ReportLists


class VelocitySprint(BaseModel):
    id: str
    name: str
    committedPoints: int
    completedPoints: int
    committedTasks: int
    completedTasks: int


class VelocityOut(BaseModel):
    sprints: list[VelocitySprint]
    averagePoints: float
    averageTasks: float


class VelocityArgs(BaseModel):
    last: int | None = Field(default=None, ge=1, le=24)


# ---------------------------------------------------------------- keeping it tidy --


class TaskStory(BaseModel):
    """The story a task goes under (another of the organization's)."""

    storyId: str | int


class FreeIn(BaseModel):
    """Why an organization owner frees a task someone else holds (required then; the
    holder giving it up sends nothing)."""

    reason: str | None = Field(default=None, max_length=200)


class MinePlace(BaseModel):
    sprintId: str | None  # null: the backlog
    sprintName: str | None
    sprintStatus: str | None
    tasks: list[TaskOut]


class MineOut(BaseModel):
    """My work: what I hold, by sprint (the one under way first), and what I completed
    since `since` (the last 7 days), newest first."""

    held: list[MinePlace]
    completed: list[TaskOut]
    since: str
