"""HTTP of the unwanted-counterparty register."""

from __future__ import annotations

import uuid
from typing import Annotated

from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.params import EntryCursor
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Depends, Query, status

from clientele_directory.register import service
from clientele_directory.register.rules import (
    RegisterBasis,
    RegisterCheck,
    RegisterEntry,
    RegisterEntryDraft,
)
from clientele_directory.values import LongText

router = APIRouter(prefix="/v1/unwanted", tags=["unwanted counterparties"])
Keeper = Annotated[Principal, Depends(require_roles(Role.ADMIN, Role.SECURITY_OFFICER))]


@router.post("", status_code=status.HTTP_201_CREATED)
async def add_entry(
    draft: RegisterEntryDraft, principal: Keeper, runtime: CurrentRuntime
) -> RegisterEntry:
    """List a counterparty (or an INN, or an e-mail domain) as unwanted, with the reason and who
    decided. Every matching organization and person becomes blocked (event and audit entry)."""
    return await service.add_entry(runtime=runtime, principal=principal, draft=draft)


@router.get("")
async def list_entries(
    principal: Keeper,
    runtime: CurrentRuntime,
    basis: RegisterBasis | None = None,
    include_removed: bool = False,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[RegisterEntry]:
    """The register, newest first (administrators and security officers)."""
    return await service.list_entries(
        runtime=runtime, basis=basis, include_removed=include_removed, limit=limit
    )


@router.get("/check")
async def check(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    inn: Annotated[str | None, Query(max_length=20)] = None,
    email: Annotated[str | None, Query(max_length=320)] = None,
    domain: Annotated[str | None, Query(max_length=255)] = None,
) -> RegisterCheck:
    """Is this INN, e-mail address or domain unwanted? For warnings before a counterparty is
    created (lead capture, imports). Open to every signed-in user."""
    return await service.check(runtime=runtime, inn=inn, email=email, domain=domain)


@router.get("/{entry_id}")
async def get_entry(
    entry_id: uuid.UUID, principal: Keeper, runtime: CurrentRuntime
) -> RegisterEntry:
    return await service.get_entry(runtime=runtime, entry_id=entry_id)


@router.get("/{entry_id}/audit")
async def entry_audit(
    entry_id: uuid.UUID,
    principal: Keeper,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    """Who listed and who removed the entry, when and why."""
    return await service.entry_audit(runtime=runtime, entry_id=entry_id, after=after, limit=limit)


@router.delete("/{entry_id}")
async def remove_entry(
    entry_id: uuid.UUID,
    principal: Keeper,
    runtime: CurrentRuntime,
    reason: Annotated[LongText | None, Query(description="why the entry is removed")] = None,
) -> RegisterEntry:
    """Remove an entry (kept, marked removed); records no longer matching any entry become
    unblocked (event and audit entry)."""
    return await service.remove_entry(
        runtime=runtime, principal=principal, entry_id=entry_id, reason=reason
    )
