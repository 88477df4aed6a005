"""HTTP of the configurable results of interactions (admins manage them)."""

from __future__ import annotations

from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Response, status

from clientele_interactions.dependencies import Admin
from clientele_interactions.log.schemas import Kind
from clientele_interactions.results import service
from clientele_interactions.results.rules import ResultDefinition, ResultDraft, ResultPatch

router = APIRouter(prefix="/v1/results", tags=["results"])


@router.get("")
async def list_results(
    _: CurrentPrincipal,
    runtime: CurrentRuntime,
    kind: Kind | None = None,
    include_inactive: Annotated[bool, Query()] = False,
) -> list[ResultDefinition]:
    """The results an interaction may have, per kind, in display order."""
    return await service.list_results(runtime=runtime, kind=kind, include_inactive=include_inactive)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_result(
    draft: ResultDraft, _: Admin, runtime: CurrentRuntime, response: Response
) -> ResultDefinition:
    """Add a result for a kind (admins); 409 when the kind already has that code."""
    result = await service.create_result(runtime=runtime, draft=draft)
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/v1/results/{draft.kind}/{draft.code}"
    return result


@router.patch("/{kind}/{code}")
async def update_result(
    kind: Kind,
    code: str,
    patch: ResultPatch,
    _: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> ResultDefinition:
    """Rename, reorder, change the follow-up suggestion, or (de)activate a result (admins).
    A deactivated result stays on the interactions that have it and is refused for new ones."""
    result = await service.update_result(
        runtime=runtime, kind=kind, code=code, patch=patch, expected=required_versions(if_match)
    )
    response.headers["ETag"] = etag(result.version)
    return result
