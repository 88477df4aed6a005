"""HTTP of merging: two organizations or two persons, and their duplicate candidates."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, Writer
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter, Query, Response

from clientele_directory.merging import service
from clientele_directory.merging.schemas import MergeRequest, MergeResult, PersonMergeResult
from clientele_directory.organizations.rules import OrganizationDuplicate
from clientele_directory.persons.rules import DuplicateCandidate

router = APIRouter()


@router.post("/v1/organizations/{org_id}/merge", tags=["organizations"])
async def merge_organizations(
    org_id: uuid.UUID,
    request: MergeRequest,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> MergeResult:
    """Merge ``other_id`` into this organization (the survivor, If-Match with its ETag).

    By default the survivor's values stay, its empty fields are filled and list fields united
    (``take`` and ``values`` choose otherwise). Both must be visible (404) and the caller must
    belong to every direction of both (403); an organization already merged is a 409. Employments,
    static list memberships, register entries and custom attributes referring to the other move
    to the survivor; the other is soft-deleted with ``merged_into``; both are audited;
    ``directory.organization.merged`` tells other services to re-point references.
    """
    result = await service.merge_organizations(
        runtime=runtime,
        principal=principal,
        org_id=org_id,
        request=request,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(result.survivor.version)
    return result


@router.get("/v1/organizations/{org_id}/duplicates", tags=["organizations"])
async def organization_duplicates(
    org_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[OrganizationDuplicate]:
    """Organizations that may be this one (live, and visible to the caller: nobody else's are
    shown or counted), best first: the same INN, a shared e-mail, a shared phone, a similar
    name without its legal form (trigram similarity ≥ 0.5; two INNs are two companies, so an
    organization with an INN is compared by name only with those without one). The import's
    look-ups, for one organization. 404 for an organization the caller may not see."""
    return await service.organization_duplicates(
        runtime=runtime, principal=principal, org_id=org_id, limit=limit
    )


@router.post("/v1/persons/{person_id}/merge", tags=["persons"])
async def merge_persons(
    person_id: uuid.UUID,
    request: MergeRequest,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> PersonMergeResult:
    """Merge ``other_id`` into this person (the survivor, If-Match with its ETag; the other's
    version in ``other_version``, 409 when stale).

    By default the survivor's values stay, empty ones are filled, phones, e-mails and directions
    are united (``take`` and ``values`` choose otherwise); consent is never widened: a channel
    stays agreed only if both persons agreed. Both must be visible (404) and the caller must
    belong to every direction of both (403); a person merged already, or into himself, is a
    409. Employments (folded when both held the same position at one organization), register
    entries and attribute references move to the survivor; the other is soft-deleted with
    ``merged_into``; both are audited; ``directory.person.merged`` lists the moved employments.
    """
    result = await service.merge_persons(
        runtime=runtime,
        principal=principal,
        person_id=person_id,
        request=request,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(result.survivor.version)
    return result


@router.get("/v1/persons/{person_id}/duplicates", tags=["persons"])
async def person_duplicates(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    same_birthday: Annotated[
        bool, Query(description="only candidates born the same day (both birthdays known)")
    ] = False,
    limit: Annotated[int, Query(ge=1, le=50)] = 10,
) -> list[DuplicateCandidate]:
    """Persons who may be this one (live, and visible to the caller: nobody else's people are
    shown or counted), best first: a shared e-mail (his own or a work one, case aside), a
    shared personal phone, a similar name (Cyrillic and Latin compared in Latin letters,
    trigram similarity ≥ 0.5); a different birthday ranks a candidate down. 404 for a person
    the caller may not see."""
    return await service.person_duplicates(
        runtime=runtime,
        principal=principal,
        person_id=person_id,
        same_birthday=same_birthday,
        limit=limit,
    )
