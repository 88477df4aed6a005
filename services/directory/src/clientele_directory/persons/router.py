"""HTTP of persons and their employments."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, Writer
from clientele_shared.http.concurrency import IfMatch, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Query, Response, status

from clientele_directory.persons import service
from clientele_directory.persons.rules import (
    Employment,
    EmploymentDraft,
    EmploymentPatch,
    Person,
    PersonCard,
    PersonDraft,
    PersonPatch,
)

router = APIRouter(prefix="/v1/persons", tags=["persons"])


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_person(
    draft: PersonDraft, principal: Writer, runtime: CurrentRuntime, response: Response
) -> Person:
    """A new person with his own directions (403 outside the caller's) and/or employments at
    organizations the caller sees (422 for any other)."""
    person = await service.create_person(runtime=runtime, principal=principal, draft=draft)
    response.headers["ETag"] = etag(person.version)
    response.headers["Location"] = f"/v1/persons/{person.id}"
    return person


@router.get("/{person_id}")
async def get_person(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
    include_deleted: Annotated[bool, Query(description="also answer for a deleted one")] = False,
) -> PersonCard:
    """One person with the employments the caller may see, and campaigns' consent per mailing
    channel (source and time) and addresses a mailing hard-bounced on, read-only; 404 if the
    caller may not see him."""
    person = await service.get_person(
        runtime=runtime, principal=principal, person_id=person_id, include_deleted=include_deleted
    )
    response.headers["ETag"] = etag(person.version)
    return person


@router.get("")
async def list_persons(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    organization_id: Annotated[
        uuid.UUID | None, Query(description="only the people working at this organization")
    ] = None,
    deleted: Annotated[bool, Query(description="list the deleted ones instead")] = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Person]:
    """Persons the caller may see, by name."""
    return await service.list_persons(
        runtime=runtime,
        principal=principal,
        organization_id=organization_id,
        deleted=deleted,
        limit=limit,
    )


@router.patch("/{person_id}")
async def update_person(
    person_id: uuid.UUID,
    patch: PersonPatch,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Person:
    """JSON merge patch of the person's own fields; If-Match required (428/412)."""
    person = await service.update_person(
        runtime=runtime,
        principal=principal,
        person_id=person_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(person.version)
    return person


@router.delete("/{person_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_person(
    person_id: uuid.UUID,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Soft-delete a person (restorable); If-Match required."""
    person = await service.set_deleted(
        runtime=runtime,
        principal=principal,
        person_id=person_id,
        expected=required_versions(if_match),
        delete=True,
    )
    response.headers["ETag"] = etag(person.version)


@router.delete("/{person_id}/addresses-for-review", status_code=status.HTTP_204_NO_CONTENT)
async def clear_address_review(
    person_id: uuid.UUID,
    principal: Writer,
    runtime: CurrentRuntime,
    email: Annotated[
        str,
        Query(
            min_length=3,
            max_length=320,
            pattern=r"^[^\x00-\x1f\x7f]+$",
            description="the address reviewed (any case)",
        ),
    ],
) -> None:
    """The address a mailing hard-bounced on was reviewed: its mark leaves the card (audited);
    404 when the caller does not see the person or the address carries no mark."""
    await service.clear_address_review(
        runtime=runtime, principal=principal, person_id=person_id, email=email
    )


@router.post("/{person_id}/restore")
async def restore_person(
    person_id: uuid.UUID,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Person:
    """Bring a deleted person back; If-Match with the deleted version's ETag."""
    person = await service.set_deleted(
        runtime=runtime,
        principal=principal,
        person_id=person_id,
        expected=required_versions(if_match),
        delete=False,
    )
    response.headers["ETag"] = etag(person.version)
    return person


@router.get("/{person_id}/audit")
async def person_audit(
    person_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """The person's changes and those of the employments the caller may see."""
    return await service.person_audit(
        runtime=runtime, principal=principal, person_id=person_id, after=after, limit=limit
    )


@router.post("/{person_id}/employments", status_code=status.HTTP_201_CREATED)
async def add_employment(
    person_id: uuid.UUID,
    draft: EmploymentDraft,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
) -> Employment:
    """The person works at an organization the caller sees (422 for any other)."""
    employment = await service.add_employment(
        runtime=runtime, principal=principal, person_id=person_id, draft=draft
    )
    response.headers["ETag"] = etag(employment.version)
    response.headers["Location"] = f"/v1/persons/{person_id}/employments/{employment.id}"
    return employment


@router.patch("/{person_id}/employments/{employment_id}")
async def update_employment(
    person_id: uuid.UUID,
    employment_id: uuid.UUID,
    patch: EmploymentPatch,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> Employment:
    """JSON merge patch of an employment; If-Match with the employment's ETag."""
    employment = await service.update_employment(
        runtime=runtime,
        principal=principal,
        person_id=person_id,
        employment_id=employment_id,
        patch=patch,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(employment.version)
    return employment


@router.delete("/{person_id}/employments/{employment_id}", status_code=204)
async def delete_employment(
    person_id: uuid.UUID,
    employment_id: uuid.UUID,
    principal: Writer,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> None:
    """Remove an employment (kept for the audit); a person without directions keeps at least
    one employment (409)."""
    version = await service.delete_employment(
        runtime=runtime,
        principal=principal,
        person_id=person_id,
        employment_id=employment_id,
        expected=required_versions(if_match),
    )
    response.headers["ETag"] = etag(version)
