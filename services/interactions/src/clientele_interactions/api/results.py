"""The configurable results of interactions, per kind (admins manage them)."""

from __future__ import annotations

from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from clientele_shared.http.problems import NotFound
from fastapi import APIRouter, Query, Response, status
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from clientele_interactions.api.common import Admin, Runtime
from clientele_interactions.domain.model import Kind, ResultDefinition, ResultDraft, ResultPatch
from clientele_interactions.domain.rules import Rejected
from clientele_interactions.operations import Conflict
from clientele_interactions.store import interaction_results

router = APIRouter(prefix="/v1/results", tags=["results"])
_NOT_FOUND = "No such result."


@router.get("")
async def list_results(
    _: CurrentPrincipal,
    runtime: Runtime,
    kind: Kind | None = None,
    include_inactive: Annotated[bool, Query()] = False,
) -> list[ResultDefinition]:
    """The results an interaction may have, per kind, in display order."""
    stmt = select(interaction_results).order_by(
        interaction_results.c.kind, interaction_results.c.position, interaction_results.c.code
    )
    if kind is not None:
        stmt = stmt.where(interaction_results.c.kind == kind)
    if not include_inactive:
        stmt = stmt.where(interaction_results.c.active)
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [ResultDefinition.model_validate(row, from_attributes=True) for row in rows]


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_result(
    draft: ResultDraft, _: Admin, runtime: Runtime, response: Response
) -> ResultDefinition:
    """Add a result for a kind (admins); 409 when the kind already has that code."""
    async with runtime.sessions() as session, session.begin():
        row = (
            await session.execute(
                insert(interaction_results)
                .values(**draft.model_dump(), version=1)
                .on_conflict_do_nothing()
                .returning(interaction_results)
            )
        ).first()
    if row is None:
        raise Conflict(f"The result {draft.code!r} of {draft.kind} exists already.")
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/v1/results/{draft.kind}/{draft.code}"
    return ResultDefinition.model_validate(row, from_attributes=True)


@router.patch("/{kind}/{code}")
async def update_result(
    kind: Kind,
    code: str,
    patch: ResultPatch,
    _: Admin,
    runtime: Runtime,
    response: Response,
    if_match: IfMatch = None,
) -> ResultDefinition:
    """Rename, reorder, change the follow-up suggestion, or (de)activate a result (admins).
    A deactivated result stays on the interactions that have it and is refused for new ones."""
    wanted = required_versions(if_match)
    key = (interaction_results.c.kind == kind, interaction_results.c.code == code)
    async with runtime.sessions() as session, session.begin():
        current = (
            await session.execute(select(interaction_results).where(*key).with_for_update())
        ).first()
        if current is None:
            raise NotFound(_NOT_FOUND)
        check_version(wanted, current.version)
        values = patch.model_dump(exclude_unset=True)
        for name in ("label", "position", "active"):
            if name in values and values[name] is None:
                raise Rejected.field(name, "may not be null")
        row = (
            await session.execute(
                interaction_results.update()
                .where(*key)
                .values(**values, version=current.version + 1, updated_at=func.now())
                .returning(interaction_results)
            )
        ).one()
    response.headers["ETag"] = etag(row.version)
    return ResultDefinition.model_validate(row, from_attributes=True)
