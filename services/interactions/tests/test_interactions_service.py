"""Interactions' business operations through their service functions against real PostgreSQL
(no HTTP, no Kafka): the results admins manage, secret calendar feeds, and the shared unit of
work writing the interactions' own audit trail."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest
from clientele_interactions.clients.readmodels import on_employee_event
from clientele_interactions.exports import service as exports
from clientele_interactions.results import service as results
from clientele_interactions.results.rules import ResultDraft, ResultPatch
from clientele_interactions.tables import interaction_audit
from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.schemas.directory import EmployeeCreated
from clientele_shared.http.concurrency import PreconditionFailed
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import unit_of_work
from sqlalchemy import select

pytestmark = pytest.mark.integration

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


async def test_results_are_unique_per_kind_and_change_under_if_match(
    runtime: ServiceRuntime,
) -> None:
    code = f"r{uuid.uuid4().hex[:8]}"
    created = await results.create_result(
        runtime=runtime, draft=ResultDraft(kind="call", code=code, label="Перезвонить")
    )
    assert (created.version, created.active) == (1, True)
    with pytest.raises(Conflict):
        await results.create_result(
            runtime=runtime, draft=ResultDraft(kind="call", code=code, label="again")
        )
    with pytest.raises(PreconditionFailed):  # a stale If-Match changes nothing
        await results.update_result(
            runtime=runtime, kind="call", code=code, patch=ResultPatch(active=False), expected={7}
        )
    changed = await results.update_result(
        runtime=runtime, kind="call", code=code, patch=ResultPatch(active=False), expected={1}
    )
    assert (changed.version, changed.active, changed.label) == (2, False, "Перезвонить")
    listed = await results.list_results(runtime=runtime, kind="call", include_inactive=False)
    assert code not in {r.code for r in listed}
    with pytest.raises(NotFound):
        await results.update_result(
            runtime=runtime, kind="meeting", code=code, patch=ResultPatch(), expected=set()
        )


async def test_a_calendar_feed_is_issued_to_oneself_rotated_and_revoked(
    runtime: ServiceRuntime,
) -> None:
    employee_id = uuid.uuid4()
    created = EmployeeCreated(
        employee_id=employee_id,
        name="Анна",
        email=f"anna-{employee_id.hex[:8]}@example.com",
        roles=["sales"],
        directions=["north"],
        active=True,
        version=1,
    )
    async with runtime.sessions() as session, session.begin():
        await on_employee_event(session, Envelope.model_construct(), created)
    anna = Principal(subject=str(employee_id), roles=frozenset({"sales"}))
    with pytest.raises(NotFound):  # nobody else's, and not an admin
        await exports.issue_feed(
            runtime=runtime, principal=Principal(subject="boris"), employee_id=employee_id
        )
    first = await exports.issue_feed(runtime=runtime, principal=anna, employee_id=employee_id)
    second = await exports.issue_feed(runtime=runtime, principal=anna, employee_id=employee_id)
    token = second.url.removeprefix("/v1/calendar-feeds/").removesuffix(".ics")
    calendar = await exports.calendar_feed(runtime=runtime, token=token, now=NOW)
    assert b"BEGIN:VCALENDAR" in calendar
    stale = first.url.removeprefix("/v1/calendar-feeds/").removesuffix(".ics")
    with pytest.raises(NotFound):  # rotated: the first URL is dead
        await exports.calendar_feed(runtime=runtime, token=stale, now=NOW)
    history = await exports.feed_history(runtime=runtime, principal=anna, employee_id=employee_id)
    assert [(f.feed_id, f.revoked_at is None) for f in history] == [
        (second.feed_id, True),
        (first.feed_id, False),
    ]
    await exports.revoke_feed(runtime=runtime, principal=anna, employee_id=employee_id)
    with pytest.raises(NotFound):  # none is live any more
        await exports.revoke_feed(runtime=runtime, principal=anna, employee_id=employee_id)


async def test_the_shared_unit_of_work_writes_the_interactions_audit_trail(
    runtime: ServiceRuntime,
) -> None:
    interaction_id = uuid.uuid4()
    actor = Actor(subject="sam", kind="user")
    async with unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, actor) as uow:
        await uow.audit(
            kind="interaction",
            entity_id=interaction_id,
            action="completed",
            version=2,
            changes={"status": {"old": "planned", "new": "done"}},
            note="by the service tier",
        )

    async def cancel_then_fail() -> None:
        async with unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, actor) as uow:
            await uow.audit(
                kind="interaction", entity_id=interaction_id, action="cancelled", version=3
            )
            raise RuntimeError("the operation failed")

    with pytest.raises(RuntimeError):  # the entry is rolled back with its transaction
        await cancel_then_fail()
    async with runtime.sessions() as session:
        rows = (
            await session.execute(
                select(interaction_audit).where(
                    interaction_audit.c.interaction_id == interaction_id
                )
            )
        ).all()
    assert [(r.action, r.version, r.actor_subject, r.note) for r in rows] == [
        ("completed", 2, "sam", "by the service tier")
    ]
    assert rows[0].changes == {"status": {"old": "planned", "new": "done"}}
