"""HTTP of tasks and their calendar feed: parse, call the service, answer with the ETag."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, Literal

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Query, Response, status
from pydantic import AwareDatetime, BaseModel

from clientele_pipeline.tasks import service
from clientele_pipeline.tasks.rules import Completion, Reassignment, Task, TaskDraft, TaskPatch

router = APIRouter(tags=["tasks"])
Limit = Annotated[int, Query(ge=1, le=500)]
ICALENDAR = "text/calendar; charset=utf-8"
_CALENDAR: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/calendar": {}}, "description": "iCalendar feed"}
}


def _tagged(response: Response, task: Task) -> Task:
    response.headers["ETag"] = etag(task.version)
    return task


@router.post("/v1/tasks", status_code=status.HTTP_201_CREATED)
async def create_task(
    draft: TaskDraft, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Task:
    """A task for an active employee of its directions, about a visible deal and/or
    organization (422 otherwise)."""
    task = await service.create_task(runtime=runtime, principal=principal, draft=draft)
    response.headers["Location"] = f"/v1/tasks/{task.id}"
    return _tagged(response, task)


@router.get("/v1/tasks")
async def list_tasks(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    assignee_employee_id: uuid.UUID | None = None,
    deal_id: uuid.UUID | None = None,
    organization_id: uuid.UUID | None = None,
    task_status: Annotated[Literal["open", "done"] | None, Query(alias="status")] = None,
    overdue: Annotated[bool | None, Query(description="open and past the deadline")] = None,
    due_before: AwareDatetime | None = None,
    limit: Limit = 100,
) -> list[Task]:
    """Tasks of the caller's directions, by deadline."""
    where = service.TaskFilter(
        assignee_employee_id=assignee_employee_id,
        deal_id=deal_id,
        organization_id=organization_id,
        status=task_status,
        overdue=overdue,
        due_before=due_before,
        limit=limit,
    )
    return await service.list_tasks(runtime=runtime, principal=principal, where=where)


@router.get("/v1/tasks/{task_id}")
async def get_task(
    task_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> Task:
    task = await service.get_task(runtime=runtime, principal=principal, task_id=task_id)
    return _tagged(response, task)


@router.patch("/v1/tasks/{task_id}")
async def update_task(
    task_id: uuid.UUID,
    patch: TaskPatch,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Task:
    """JSON merge patch of title, description, deadline, priority (If-Match)."""
    task = await service.update_task(
        runtime=runtime,
        principal=principal,
        task_id=task_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    return _tagged(response, task)


@router.post("/v1/tasks/{task_id}/complete")
async def complete_task(
    task_id: uuid.UUID,
    completion: Completion,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Task:
    """Done, with its result (If-Match; 409 task-done when it already is)."""
    task = await service.complete_task(
        runtime=runtime,
        principal=principal,
        task_id=task_id,
        completion=completion,
        expected=required_versions(if_match),
    )
    return _tagged(response, task)


@router.post("/v1/tasks/{task_id}/reassign")
async def reassign_task(
    task_id: uuid.UUID,
    reassignment: Reassignment,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Task:
    """To another active employee of the task's directions (If-Match)."""
    task = await service.reassign_task(
        runtime=runtime,
        principal=principal,
        task_id=task_id,
        reassignment=reassignment,
        expected=required_versions(if_match),
    )
    return _tagged(response, task)


@router.get("/v1/tasks/{task_id}/audit")
async def task_audit(
    task_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: Annotated[int, Query(ge=0, le=2**63 - 1, description="entries after this id")] = 0,
    limit: Limit = 100,
) -> list[AuditEntry]:
    return await service.task_audit(
        runtime=runtime, principal=principal, task_id=task_id, after=after, limit=limit
    )


class FeedIssued(BaseModel):
    """A new secret feed URL: shown once (only a digest of its secret is kept)."""

    feed_id: uuid.UUID
    url: str
    """Relative to the service's public address; subscribe to it in the calendar client."""
    created_at: datetime


@router.post("/v1/employees/{employee_id}/task-feed", status_code=status.HTTP_201_CREATED)
async def issue_feed(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime, response: Response
) -> FeedIssued:
    """A secret iCalendar feed URL of the employee's open tasks, replacing (revoking) the one
    issued before. The employee himself or an administrator (404 otherwise)."""
    issued = await service.issue_feed(runtime=runtime, principal=principal, employee_id=employee_id)
    response.headers["Cache-Control"] = "no-store"
    return FeedIssued(feed_id=issued.feed_id, url=issued.url, created_at=issued.created_at)


@router.delete("/v1/employees/{employee_id}/task-feed", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_feed(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> None:
    """Revoke the employee's feed URL (404 when none is live)."""
    await service.revoke_feed(runtime=runtime, principal=principal, employee_id=employee_id)


@router.get("/v1/employees/{employee_id}/tasks.ics", response_class=Response, responses=_CALENDAR)
async def employee_calendar(
    employee_id: uuid.UUID, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> Response:
    """The employee's open tasks the caller sees, as iCalendar (bearer token)."""
    body = await service.employee_calendar(
        runtime=runtime, principal=principal, employee_id=employee_id
    )
    return Response(body, media_type=ICALENDAR)


@router.get("/v1/task-feeds/{token}.ics", response_class=Response, responses=_CALENDAR)
async def feed_calendar(token: str, runtime: CurrentRuntime) -> Response:
    """The employee's open tasks by the secret URL alone (no bearer token); 404 for an unknown,
    revoked or rotated token and for a deactivated employee."""
    body = await service.feed_calendar(runtime=runtime, token=token)
    return Response(
        body,
        media_type=ICALENDAR,
        headers={"Cache-Control": "private, no-store", "Referrer-Policy": "no-referrer"},
    )
