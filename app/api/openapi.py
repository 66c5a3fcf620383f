"""The OpenAPI document at /openapi.json: the JSON API only, with links between operations.

The links say where an answer's ids lead (a created task to taking it, a taken task to
starting it, …): integrators read them, and the stateful fuzz walks them.
"""

from __future__ import annotations

from typing import Any

from quart_schema import OpenAPIProvider
from werkzeug.routing import BaseConverter, Rule

from app.inputs import MAX_ROW_ID, RowIdConverter

TASK_ACTIONS = (
    "get_get_task",
    "get_history",
    "put_take",
    "delete_release",
    "post_start",
    "post_complete",
    "patch_set_status",
)

# operationId → status → {link name: (target operationId, {parameter: runtime expression})}
# (quart-schema keys responses by the status as an int).
LINKS: dict[str, dict[int, dict[str, tuple[str, dict[str, str]]]]] = {
    "post_add_task": {
        201: {op: (op, {"task_id": "$response.body#/task_id"}) for op in TASK_ACTIONS},
    },
    "put_take": {
        200: {op: (op, {"task_id": "$response.body#/task/id"}) for op in TASK_ACTIONS},
    },
    "post_start": {
        200: {op: (op, {"task_id": "$response.body#/task/id"}) for op in TASK_ACTIONS},
    },
    "get_get_task": {
        200: {
            "get_story_tasks": ("get_story_tasks", {"story_id": "$response.body#/story_id"}),
            "post_add_task": ("post_add_task", {"story_id": "$response.body#/story_id"}),
        },
    },
    "get_sprints": {
        200: {
            "get_sprint_board": ("get_sprint_board", {"sprint_id": "$response.body#/sprints/0/id"}),
            "get_burndown": ("get_burndown", {"sprint_id": "$response.body#/sprints/0/id"}),
            "get_presence": ("get_presence", {"sprint_id": "$response.body#/sprints/0/id"}),
            "get_report": ("get_report", {"sprint_id": "$response.body#/sprints/0/id"}),
        },
    },
    # A story made by a script: add its tasks, read it, move it.
    "post_add_story": {
        201: {
            "post_add_task": ("post_add_task", {"story_id": "$response.body#/id"}),
            "get_get_story": ("get_get_story", {"story_id": "$response.body#/id"}),
            "put_put_story_sprint": ("put_put_story_sprint", {"story_id": "$response.body#/id"}),
        },
    },
    "get_backlog": {
        200: {
            "post_add_task": ("post_add_task", {"story_id": "$response.body#/stories/0/id"}),
            "put_put_story_sprint": (
                "put_put_story_sprint",
                {"story_id": "$response.body#/stories/0/id"},
            ),
        },
    },
    # Archived: restore it; restored: back to its life.
    "delete_archive_task": {
        200: {"post_restore_task": ("post_restore_task", {"task_id": "$response.body#/id"})},
    },
    "post_restore_task": {
        200: {op: (op, {"task_id": "$response.body#/id"}) for op in TASK_ACTIONS},
    },
    "get_sprint_board": {
        200: {
            "get_get_task": ("get_get_task", {"task_id": "$response.body#/tasks/0/id"}),
            "put_take": ("put_take", {"task_id": "$response.body#/tasks/0/id"}),
            "post_add_task": ("post_add_task", {"story_id": "$response.body#/tasks/0/storyId"}),
        },
    },
}


class ApiOpenAPI(OpenAPIProvider):
    """Document only the JSON API (the HTML pages are not an API), with its links."""

    def generate_rules(self) -> Any:
        for rule in super().generate_rules():
            if isinstance(rule, Rule) and rule.rule.startswith("/api/"):
                yield rule

    def build_path_parameter(self, name: str, converter: BaseConverter) -> dict[str, Any]:
        parameter = super().build_path_parameter(name, converter)
        if isinstance(converter, RowIdConverter):
            parameter["schema"] = {"type": "integer", "minimum": 0, "maximum": MAX_ROW_ID}
        return parameter

    def schema(self) -> dict[str, Any]:
        document = super().schema()
        for operations in document["paths"].values():
            for operation in operations.values():
                for status, links in LINKS.get(operation.get("operationId", ""), {}).items():
                    response = operation.get("responses", {}).get(status)
                    if response is None:
                        continue
                    response["links"] = {
                        name: {"operationId": target, "parameters": parameters}
                        for name, (target, parameters) in links.items()
                    }
        return document
