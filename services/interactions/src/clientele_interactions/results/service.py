"""Result operations: list the results of a kind, add one, change one (admins)."""

from __future__ import annotations

from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.runtime import ServiceRuntime

from clientele_interactions.log.rules import Rejected
from clientele_interactions.log.schemas import Kind
from clientele_interactions.results import queries
from clientele_interactions.results.rules import ResultDefinition, ResultDraft, ResultPatch

NOT_FOUND = "No such result."


async def list_results(
    *, runtime: ServiceRuntime, kind: Kind | None, include_inactive: bool
) -> list[ResultDefinition]:
    """The results an interaction may have, per kind, in display order."""
    async with runtime.sessions() as session:
        rows = await queries.results(session, kind, include_inactive)
    return [ResultDefinition.model_validate(row, from_attributes=True) for row in rows]


async def create_result(*, runtime: ServiceRuntime, draft: ResultDraft) -> ResultDefinition:
    """Add a result for a kind; 409 when the kind already has that code."""
    async with runtime.sessions() as session, session.begin():
        row = await queries.insert_result(session, draft.model_dump())
    if row is None:
        raise Conflict(f"The result {draft.code!r} of {draft.kind} exists already.")
    return ResultDefinition.model_validate(row, from_attributes=True)


async def update_result(
    *, runtime: ServiceRuntime, kind: Kind, code: str, patch: ResultPatch, expected: set[int]
) -> ResultDefinition:
    """Rename, reorder, change the follow-up suggestion, or (de)activate a result (If-Match).
    A deactivated result stays on the interactions that have it and is refused for new ones."""
    async with runtime.sessions() as session, session.begin():
        current = await queries.locked_result(session, kind, code)
        if current is None:
            raise NotFound(NOT_FOUND)
        check_version(expected, current.version)
        values = patch.model_dump(exclude_unset=True)
        for name in ("label", "position", "active"):
            if name in values and values[name] is None:
                raise Rejected.field(name, "may not be null")
        row = await queries.update_result(session, kind, code, values, current.version + 1)
    return ResultDefinition.model_validate(row, from_attributes=True)
