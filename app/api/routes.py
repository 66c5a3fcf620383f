"""JSON routes. Each resolves the organization, calls the same domain code as the pages."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from quart import g, request
from quart_schema import (
    document_headers,
    document_querystring,
    document_request,
    document_response,
    validate_request,
    validate_response,
)
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api import bp
from app.api.schemas import (
    ActionResult,
    BacklogOut,
    BoardArgs,
    BoardOut,
    BurndownOut,
    CompleteIn,
    CompleteOut,
    Created,
    ErrorBody,
    FreeIn,
    History,
    IfMatch,
    MeOut,
    MineOut,
    NewStory,
    NewTask,
    PreconditionBody,
    PresenceOut,
    ReportOut,
    SprintList,
    StatusChange,
    StoryEdit,
    StoryOut,
    StorySprint,
    TaskEdit,
    TaskOut,
    TaskStory,
    UserOut,
    VelocityArgs,
    VelocityOut,
)
from app.auth.accounts import member_access, memberships_of
from app.auth.guards import (
    current_user,
    resolve_membership,
    use_membership,
)
from app.db import get_db, utcnow
from app.errors import (
    Conflict,
    Invalid,
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unauthenticated,
)
from app.events.log import task_history
from app.events.serialize import event_json
from app.inputs import row_id, whole_number
from app.live.streams import live_updates
from app.models import Membership, Role, Sprint, Story, Task, TaskStatus, User
from app.tasks import tidying
from app.tasks.board import BoardQuery, build_view, load_sprint, load_sprint_rows
from app.tasks.cycle import complete_sprint, load_backlog, move_story
from app.tasks.editing import (
    CriterionFields,
    StoryFields,
    TaskFields,
    create_story,
    create_task,
    load_story,
    update_story,
    update_task,
)
from app.tasks.lifecycle import Action, Change, action_for_target, change_task, load_task
from app.tasks.mine import load_my_work
from app.tasks.report import load_report, load_velocity
from app.tasks.sprints import OPEN_FOR_WORK, load_summary, sprints_newest_first
from app.timefmt import iso, local_today


def task_json(task: Task) -> dict[str, Any]:
    """A task as the replaced API wrote it (snake_case, string ids)."""
    return {
        "id": str(task.id),
        "story_id": str(task.story_id),
        "title": task.title,
        "description": task.description,
        "acceptance_criteria_refs": list(task.ac_refs or []),
        "status": task.status,
        "owner_user_id": None if task.owner_id is None else str(task.owner_id),
        "estimated_hours": task.estimate_hours,
        "created_at": iso(task.created_at),
        "updated_at": iso(task.updated_at),
        "owned_at": iso(task.owned_at),
        "completed_at": iso(task.completed_at),
        "archived": task.archived,
    }


def require_user() -> User:
    user = current_user()
    if user is None:
        raise Unauthenticated("Send `Authorization: Bearer <token>` or sign in.")
    return user


@bp.before_request
async def authenticated() -> None:
    """Every API route needs a user: say so (401) before a body or an id is judged."""
    require_user()


def org_ref() -> str | None:
    """The organization the request names: X-Organization-Id or ?org= (slug or id)."""
    return request.headers.get("X-Organization-Id") or request.args.get("org") or None


async def use_api_org() -> None:
    """Pick the organization: X-Organization-Id, ?org=, or the user's first."""
    use_membership(await resolve_membership(org_ref()))


@bp.get("/users/me")
@validate_response(MeOut)
@document_response(ErrorBody, 401)
async def me() -> Any:
    """Who I am and the organizations I belong to."""
    user = require_user()
    async with get_db().read() as db:
        rows = await memberships_of(db, user.id)
    return {
        "id": str(user.id),
        "email": user.email,
        "name": user.name,
        "organizations": [
            {
                "id": str(m.org_id),
                "slug": m.organization.slug,
                "name": m.organization.name,
                "role": m.role,
            }
            for m in rows
        ],
    }


@bp.get("/users/<int:user_id>")
@validate_response(UserOut)
@document_response(ErrorBody, 404)
async def user(user_id: int) -> Any:
    """A person who shares an organization with me."""
    me_ = require_user()
    async with get_db().read() as db:
        mine = select(Membership.org_id).where(Membership.user_id == me_.id)
        other = await db.scalar(
            select(User)
            .join(Membership, Membership.user_id == User.id)
            .where(User.id == user_id, Membership.org_id.in_(mine))
            .limit(1)
        )
    if other is None:
        raise NotFound(f"There is no user #{user_id} you share an organization with.")
    return {"id": str(other.id), "email": other.email, "name": other.name}


@bp.get("/sprints")
@validate_response(SprintList)
@document_response(ErrorBody, 404)
async def sprints() -> Any:
    """The organization's sprints, the newest first."""
    await use_api_org()
    async with get_db().read() as db:
        rows = await db.scalars(sprints_newest_first(g.org.id))
        return {
            "sprints": [
                {
                    "id": str(sprint.id),
                    "name": sprint.name,
                    "goal": sprint.goal,
                    "status": sprint.status,
                    "startDate": sprint.start_date.isoformat(),
                    "endDate": sprint.end_date.isoformat(),
                }
                for sprint in rows
            ]
        }


@bp.get("/sprints/<int:sprint_id>/tasks")
@document_querystring(BoardArgs)
@validate_response(BoardOut)
@document_response(ErrorBody, 404)
async def sprint_board(sprint_id: int) -> Any:
    """The board of a sprint: header, tasks, and groups (`groupBy=story|status`)."""
    await use_api_org()
    query = BoardQuery.parse(
        request.args.get("groupBy"), request.args.getlist("status"), None, None, strict=True
    )
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
        stories, tasks = await load_sprint_rows(db, g.org.id, sprint_id)
    view = build_view(sprint, stories, tasks, query, g.user.id, local_today(g.org.time_zone))
    summary = view.summary
    shown = [t for group in view.groups for t in group.tasks]
    return {
        "sprint": {
            "id": str(sprint.id),
            "name": sprint.name,
            "goal": sprint.goal,
            "startDate": sprint.start_date.isoformat(),
            "endDate": sprint.end_date.isoformat(),
            "daysRemaining": summary.days_remaining,
            "status": sprint.status,
            "totalStories": summary.stories,
            "totalTasks": summary.total,
            "completedTasks": summary.done,
            "progressPercentage": summary.progress,
        },
        "tasks": [
            {
                "id": str(t.id),
                "storyId": str(t.story_id),
                "storyTitle": t.story.title,
                "title": t.title,
                "description": t.description,
                "status": t.status,
                "ownerUserId": None if t.owner_id is None else str(t.owner_id),
                "ownerName": t.owner.name if t.owner else None,
                "acceptanceCriteriaRefs": list(t.ac_refs or []),
                "estimatedHours": t.estimate_hours,
                "createdAt": iso(t.created_at),
                "updatedAt": iso(t.updated_at),
            }
            for t in shown
        ],
        "groups": {
            group.key.split("-", 1)[1]: {
                "count": len(group.tasks),
                "tasks": [str(t.id) for t in group.tasks],
            }
            for group in view.groups
        },
    }


@bp.get("/sprints/<int:sprint_id>/burndown")
@validate_response(BurndownOut)
@document_response(ErrorBody, 404)
async def burndown(sprint_id: int) -> Any:
    """Tasks not done at the end of each day of the sprint, and the ideal (the header's chart)."""
    await use_api_org()
    time_zone = g.org.time_zone
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
        summary = await load_summary(db, sprint, local_today(time_zone))
        chart = (await summary.chart(db, time_zone)).burndown
    assert chart is not None
    return {
        "sprintId": str(sprint.id),
        "total": chart.total,
        "remaining": chart.remaining,
        "days": [
            {"date": day.date.isoformat(), "remaining": day.remaining, "ideal": day.ideal}
            for day in chart.days
        ],
    }


@bp.get("/sprints/<int:sprint_id>/presence")
@validate_response(PresenceOut)
@document_response(ErrorBody, 404)
async def presence(sprint_id: int) -> Any:
    """Who is looking at the sprint now (its board or a task's page), on any instance,
    once each; `taskId` is the task whose page they are on."""
    await use_api_org()
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
    viewers = live_updates().presence.viewers((g.org.id, sprint.id))
    return {"viewers": [seen.as_json() for seen in viewers]}


@bp.get("/stories/<int:story_id>/tasks")
@validate_response(list[TaskOut])  # type: ignore[arg-type]
@document_response(ErrorBody, 404)
async def story_tasks(story_id: int) -> Any:
    """The tasks of a story, oldest first."""
    await use_api_org()
    async with get_db().read() as db:
        story = await load_story(db, g.org.id, story_id)
        rows = await db.scalars(
            select(Task).where(Task.story_id == story.id, Task.org_id == g.org.id).order_by(Task.id)
        )
        return [task_json(t) for t in rows]


@bp.post("/stories/<int:story_id>/tasks")
@validate_request(NewTask)
@validate_response(Created, 201)
@document_response(ErrorBody, 422)
async def add_task(story_id: int, data: NewTask) -> Any:
    """Add a task to a story."""
    await use_api_org()
    user, role, org_id = g.user, g.role, g.org.id
    fields = TaskFields(
        title=data.title,
        description=data.description or "",
        ac_refs=data.acceptance_criteria_refs,
        estimate_hours=data.estimated_hours,
    )

    async def create(db: Any) -> Task:
        story = await load_story(db, org_id, story_id)
        task, _event = await create_task(db, story=story, fields=fields, actor=user, role=role)
        return task

    task = await get_db().write(create)
    return {"task_id": str(task.id)}, 201


@bp.get("/tasks/<int:task_id>")
@validate_response(TaskOut)
@document_response(ErrorBody, 404)
async def get_task(task_id: int) -> Any:
    """One task; its `ETag` is what a PATCH sends back as `If-Match`."""
    await use_api_org()
    async with get_db().read() as db:
        task = await load_task(db, g.org.id, task_id)
    return task_json(task), 200, {"ETag": etag(task)}


@bp.patch("/tasks/<int:task_id>")
@document_headers(IfMatch)
@validate_request(TaskEdit)
@validate_response(TaskOut)
@document_response(ErrorBody, 422)
@document_response(PreconditionBody, 412)
@document_response(ErrorBody, 428)
async def edit_task(task_id: int, data: TaskEdit) -> Any:
    """Change a task's words, criteria or estimate. `If-Match` must be its current
    `ETag` (any change, a take included, makes a new one): 412 with `current` when it
    is not, 428 when it is missing."""
    await use_api_org()
    user, role, org_id = g.user, g.role, g.org.id
    sent = data.model_dump(exclude_unset=True)

    async def apply(db: Any, task: Task) -> None:
        fields = TaskFields(
            title=_given(sent, "title", task.title),
            description=_given(sent, "description", task.description),
            # null leaves them as they are; [] clears them
            ac_refs=_given(sent, "acceptance_criteria_refs", task.ac_refs or []),
            estimate_hours=sent.get("estimated_hours", task.estimate_hours),
        )
        await update_task(db, task=task, fields=fields, actor=user, role=role)

    return await patch_if_match(
        lambda db: load_task(db, org_id, task_id, for_update=True), apply, task_json
    )


def story_json(story: Story) -> dict[str, Any]:
    return {
        "id": str(story.id),
        "sprint_id": None if story.sprint_id is None else str(story.sprint_id),
        "title": story.title,
        "description": story.description,
        "points": story.points,
        "acceptance_criteria": [
            {"label": c.label, "given": c.given, "when": c.when, "then": c.then}
            for c in story.criteria
        ],
        "created_at": iso(story.created_at),
        "updated_at": iso(story.updated_at),
    }


@bp.get("/stories/<int:story_id>")
@validate_response(StoryOut)
@document_response(ErrorBody, 404)
async def get_story(story_id: int) -> Any:
    """One story with its acceptance criteria, and its `ETag`."""
    await use_api_org()
    async with get_db().read() as db:
        story = await load_story(db, g.org.id, story_id)
    return story_json(story), 200, {"ETag": etag(story)}


@bp.patch("/stories/<int:story_id>")
@document_headers(IfMatch)
@validate_request(StoryEdit)
@validate_response(StoryOut)
@document_response(ErrorBody, 422)
@document_response(PreconditionBody, 412)
@document_response(ErrorBody, 428)
async def edit_story(story_id: int, data: StoryEdit) -> Any:
    """Change a story (owners). `If-Match` as for a task. `acceptance_criteria`, when
    sent, lists every criterion in order: the first rewrite AC1, AC2, …, the rest are
    added."""
    await use_api_org()
    user, role, org_id = g.user, g.role, g.org.id
    sent = data.model_dump(exclude_unset=True)

    async def apply(db: Any, story: Story) -> None:
        criteria = [CriterionFields(**c) for c in sent.get("acceptance_criteria") or []]
        known = {c.number: CriterionFields(c.given, c.when, c.then) for c in story.criteria}
        if "acceptance_criteria" in sent and len(criteria) < len(known):
            raise Invalid(
                f"Send all {len(known)} criteria, in order: criteria cannot be removed.",
                field="acceptance_criteria",
            )
        edits = {**known, **dict(enumerate(criteria[: len(known)], start=1))}
        fields = StoryFields(
            title=_given(sent, "title", story.title),
            description=_given(sent, "description", story.description),
            points=_given(sent, "points", story.points),
            criteria=criteria[len(known) :],
        )
        await update_story(db, story=story, fields=fields, edits=edits, actor=user, role=role)

    return await patch_if_match(
        lambda db: load_story(db, org_id, story_id, for_update=True), apply, story_json
    )


async def patch_if_match(
    load: Callable[[Any], Awaitable[R]],
    apply: Callable[[Any, R], Awaitable[None]],
    as_json: Callable[[R], dict[str, Any]],
) -> Any:
    """One PATCH: in one write, the resource `load`ed (locked), checked against the
    request's `If-Match` (see `require_match`), changed by `apply`; answered as JSON
    with its new ETag."""
    given = request.headers.get("If-Match")

    async def write(db: Any) -> R:
        found = await load(db)
        require_match(given, found, as_json)
        await apply(db, found)
        return found

    changed = await get_db().write(write)
    return as_json(changed), 200, {"ETag": etag(changed)}


def _given(sent: dict[str, Any], name: str, stored: Any) -> Any:
    """What a PATCH says of `name`: left out or null keeps what is `stored`."""
    value = sent.get(name)
    return stored if value is None else value


def etag(resource: Task | Story) -> str:
    """A strong ETag: the resource and its version, which every change moves on."""
    kind = "task" if isinstance(resource, Task) else "story"
    return f'"{kind}-{resource.id}-{resource.version}"'


R = TypeVar("R", Task, Story)


def require_match(given: str | None, resource: R, as_json: Callable[[R], dict[str, Any]]) -> None:
    """Go on only if `If-Match` names the resource's current ETag (or is `*`)."""
    if given is None:
        raise PreconditionRequired(
            "Send If-Match with the ETag of the copy you changed (GET it for one)."
        )
    tags = {tag.strip() for tag in given.split(",")}
    if "*" not in tags and etag(resource) not in tags:
        raise PreconditionFailed(
            "It changed since the copy you sent the ETag of: `current` is how it is now.",
            as_json(resource),
        )


async def act(task_id: int, action: Action) -> dict[str, Any]:
    """Apply `action` as the user, in the organization the request names."""
    user, ref = require_user(), org_ref()
    change = await get_db().write(
        lambda db: change_task(db, actor=user, org=ref, task_id=task_id, action=action)
    )
    g.org_id = change.task.org_id  # for the request's log line
    return {"success": True, "message": change.message, "task": task_json(change.task)}


@bp.put("/tasks/<int:task_id>/ownership")
@validate_response(ActionResult)
@document_response(ErrorBody, 409)
async def take(task_id: int) -> Any:
    """Take the task ("I'm on it"); 409 when someone (or you) already holds it."""
    return await act(task_id, Action.TAKE)


@bp.delete("/tasks/<int:task_id>/ownership")
@document_request(FreeIn)
@validate_response(ActionResult)
@document_response(ErrorBody, 409)
@document_response(ErrorBody, 422)
async def release(task_id: int) -> Any:
    """Give the task up: it becomes available, without owner or estimate. An
    organization owner who does not hold it frees it from its holder, and must say why
    (`{"reason"}`, 422 without): the holder is told."""
    user, ref = require_user(), org_ref()
    body = await request.get_json(silent=True)
    reason = body.get("reason") if isinstance(body, dict) else None
    if reason is not None and not isinstance(reason, str):
        raise Invalid("`reason` is a sentence (a string).", field="reason")

    async def release_or_free(db: AsyncSession) -> Change:
        access = await member_access(db, user.id, ref)
        task = await load_task(db, access.org_id, task_id)
        frees = access.role is Role.OWNER and task.owner_id not in (None, user.id)
        action = Action.FREE if frees else Action.RELEASE
        return await change_task(
            db, actor=user, org=access.org_id, task_id=task_id, action=action, reason=reason
        )

    change = await get_db().write(release_or_free)
    g.org_id = change.task.org_id  # for the request's log line
    return {"success": True, "message": change.message, "task": task_json(change.task)}


async def tidy(change: Any, **ids: int) -> Task:
    """One of app.tasks.tidying's changes, as the user, in the organization asked for."""
    user, org_id = g.user, g.org.id
    return await get_db().write(
        lambda db: tidying.as_member(db, change, actor=user, org_id=org_id, **ids)
    )


@bp.delete("/tasks/<int:task_id>")
@validate_response(TaskOut)
@document_response(ErrorBody, 409)
async def archive_task(task_id: int) -> Any:
    """Archive a task: off every board, count and chart; nothing is deleted
    (`POST …/restore` brings it back)."""
    await use_api_org()
    return task_json(await tidy(tidying.archive_task, task_id=task_id))


@bp.post("/tasks/<int:task_id>/restore")
@validate_response(TaskOut)
@document_response(ErrorBody, 409)
async def restore_task(task_id: int) -> Any:
    """Bring an archived task back where it was."""
    await use_api_org()
    return task_json(await tidy(tidying.restore_task, task_id=task_id))


@bp.put("/tasks/<int:task_id>/story")
@validate_request(TaskStory)
@validate_response(TaskOut)
@document_response(ErrorBody, 409)
async def put_task_story(task_id: int, data: TaskStory) -> Any:
    """Put a task under another story of the organization (in that story's sprint)."""
    await use_api_org()
    story_id = row_id(str(data.storyId))
    if story_id is None:
        raise Invalid(f"“{str(data.storyId)[:40]}” is not a story id.", field="storyId")

    return task_json(await tidy(tidying.move_task, task_id=task_id, story_id=story_id))


@bp.get("/users/me/tasks")
@validate_response(MineOut)
async def my_tasks() -> Any:
    """My work: the tasks I hold across the organization's sprints, by sprint, and
    those I completed in the last 7 days."""
    await use_api_org()
    async with get_db().read() as db:
        work = await load_my_work(db, g.org.id, g.user.id, utcnow())
    return {
        "held": [
            {
                "sprintId": str(place.sprint.id) if place.sprint else None,
                "sprintName": place.sprint.name if place.sprint else None,
                "sprintStatus": place.sprint.status if place.sprint else None,
                "tasks": [task_json(t) for t in place.tasks],
            }
            for place in work.held
        ],
        "completed": [task_json(t) for t in work.completed],
        "since": iso(work.since),
    }


@bp.post("/tasks/<int:task_id>/work/start")
@validate_response(ActionResult)
@document_response(ErrorBody, 409)
async def start(task_id: int) -> Any:
    """Start work on a task you hold."""
    return await act(task_id, Action.START)


@bp.post("/tasks/<int:task_id>/work/complete")
@validate_response(ActionResult)
@document_response(ErrorBody, 409)
async def complete(task_id: int) -> Any:
    """Mark a task you hold as done."""
    return await act(task_id, Action.COMPLETE)


@bp.patch("/tasks/<int:task_id>/status")
@validate_request(StatusChange)
@validate_response(TaskOut)
@document_response(ErrorBody, 409)
async def set_status(task_id: int, data: StatusChange) -> Any:
    """Move a task to a status; the life cycle decides whether that is allowed."""
    await use_api_org()
    target = TaskStatus(data.status)
    async with get_db().read() as db:
        current = (await load_task(db, g.org.id, task_id)).status_enum
    if current is target:
        raise Conflict(f"The task is already {target.label.lower()}.")
    action = action_for_target(current, target)
    if action is None:
        raise Conflict(
            f"A task cannot go from {current.label.lower()} to {target.label.lower()} directly."
        )
    result = await act(task_id, action)
    return result["task"]


@bp.get("/tasks/<int:task_id>/history")
@validate_response(History)
@document_response(ErrorBody, 404)
async def history(task_id: int) -> Any:
    """Every event of a task, newest first."""
    await use_api_org()
    async with get_db().read() as db:
        task = await load_task(db, g.org.id, task_id)
        events = await task_history(db, g.org.id, task.id)
    return {"events": [event_json(e) for e in events]}


# ---------------------------------------------------------------- the sprint cycle --


def _sprint_ref(value: str | int | None, field: str) -> int | None:
    """A sprint id as a client sends it (a string or a number), or None."""
    if value is None:
        return None
    found = row_id(str(value))
    if found is None:
        raise Invalid(f"“{str(value)[:40]}” is not a sprint id.", field=field)
    return found


def sprint_item(sprint: Sprint) -> dict[str, Any]:
    return {
        "id": str(sprint.id),
        "name": sprint.name,
        "goal": sprint.goal,
        "status": sprint.status,
        "startDate": sprint.start_date.isoformat(),
        "endDate": sprint.end_date.isoformat(),
    }


@bp.post("/stories")
@validate_request(NewStory)
@validate_response(StoryOut, 201)
@document_response(ErrorBody, 422)
async def add_story(data: NewStory) -> Any:
    """Add a story (owners): to a sprint in planning or under way (`sprintId`), or to
    the backlog (null or left out)."""
    await use_api_org()
    user, role, org_id = g.user, g.role, g.org.id
    sprint_id = _sprint_ref(data.sprintId, "sprintId")
    fields = StoryFields(
        title=data.title,
        description=data.description or "",
        points=data.points if data.points is not None else 1,
        criteria=[CriterionFields(c.given, c.when, c.then) for c in data.acceptanceCriteria],
    )

    async def create(db: Any) -> Story:
        sprint = None
        if sprint_id is not None:
            sprint = await load_sprint(db, org_id, sprint_id)
            if sprint.status not in OPEN_FOR_WORK:
                raise Conflict(
                    f"“{sprint.name}” is {sprint.status}; stories are added to a sprint in "
                    "planning or under way, or to the backlog."
                )
        return await create_story(
            db, org_id=org_id, sprint=sprint, fields=fields, actor=user, role=role
        )

    story = await get_db().write(create)
    return story_json(story), 201


@bp.get("/backlog")
@validate_response(BacklogOut)
async def backlog() -> Any:
    """The stories in no sprint, in order, each with its tasks."""
    await use_api_org()
    async with get_db().read() as db:
        items = await load_backlog(db, g.org.id)
    return {
        "stories": [
            {
                "id": str(item.story.id),
                "title": item.story.title,
                "points": item.story.points,
                "position": item.story.position,
                "tasks": [task_json(t) for t in item.tasks],
            }
            for item in items
        ]
    }


@bp.put("/stories/<int:story_id>/sprint")
@validate_request(StorySprint)
@validate_response(StoryOut)
@document_response(ErrorBody, 409)
async def put_story_sprint(story_id: int, data: StorySprint) -> Any:
    """Move a story (owners), with its tasks where it is, into a sprint in planning or
    under way, or to the backlog (`null`)."""
    await use_api_org()
    user, role, org_id = g.user, g.role, g.org.id
    to = _sprint_ref(data.sprintId, "sprintId")
    story = await get_db().write(
        lambda db: move_story(
            db, org_id=org_id, story_id=story_id, to_sprint_id=to, actor=user, role=role
        )
    )
    return story_json(story)


@bp.post("/sprints/<int:sprint_id>/complete")
@validate_request(CompleteIn)
@validate_response(CompleteOut)
@document_response(ErrorBody, 409)
async def complete_sprint_route(sprint_id: int, data: CompleteIn) -> Any:
    """Complete a sprint in review (owners); its unfinished tasks go on to `carryTo`:
    a sprint in planning or under way (its id), `"new"`, or `"backlog"`."""
    await use_api_org()
    user, role, org_id, time_zone = g.user, g.role, g.org.id, g.org.time_zone
    done = await get_db().write(
        lambda db: complete_sprint(
            db,
            org_id=org_id,
            sprint_id=sprint_id,
            carry_to=str(data.carryTo),
            actor=user,
            role=role,
            time_zone=time_zone,
        )
    )
    return {
        "sprint": sprint_item(done.sprint),
        "carriedOver": [str(t.id) for t in done.carried],
        "carriedTo": None if done.carried_to is None else str(done.carried_to.id),
    }


@bp.get("/sprints/<int:sprint_id>/report")
@validate_response(ReportOut)
@document_response(ErrorBody, 404)
async def report(sprint_id: int) -> Any:
    """The sprint report: frozen at completion (`final`), "so far" before."""
    await use_api_org()
    async with get_db().read() as db:
        sprint = await load_sprint(db, g.org.id, sprint_id)
        figures = await load_report(db, sprint, g.org.time_zone)
    return figures.as_json()


@bp.get("/velocity")
@document_querystring(VelocityArgs)
@validate_response(VelocityOut)
async def velocity() -> Any:
    """The last completed sprints (`last`, default 6), oldest first, with averages."""
    await use_api_org()
    raw = request.args.get("last")
    last = whole_number(raw) if raw is not None else 6
    if last is None or not 1 <= last <= 24:
        raise Invalid("Ask for the last 1 to 24 sprints.", field="last")
    async with get_db().read() as db:
        figure = await load_velocity(db, g.org.id, last)
    return {
        "sprints": [
            {
                "id": str(s.id),
                "name": s.name,
                "committedPoints": r.committed.points,
                "completedPoints": r.completed.points,
                "committedTasks": r.committed.count,
                "completedTasks": r.completed.count,
            }
            for s, r in figure.sprints
        ],
        "averagePoints": figure.average_points,
        "averageTasks": figure.average_tasks,
    }
