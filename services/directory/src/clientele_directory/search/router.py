"""HTTP of search over organizations and persons."""

from __future__ import annotations

from clientele_shared.auth.dependencies import CurrentPrincipal
from clientele_shared.runtime import CurrentRuntime
from fastapi import APIRouter

from clientele_directory.search import service
from clientele_directory.search.schemas import (
    OrganizationPage,
    OrganizationSearch,
    PersonPage,
    PersonSearch,
)

router = APIRouter(tags=["search"])


@router.post("/v1/organizations/search")
async def search_organizations(
    search: OrganizationSearch, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> OrganizationPage:
    """Organizations the caller may see that match the filter, one page at a time.

    ``filter.q`` finds words (typos tolerated) in names, INN/KPP/OGRN, phones (any usual
    writing), e-mails and the names, phones and e-mails of the organization's people. Sort by
    ``name`` (Cyrillic-aware when the database has ICU), ``created``, their reverse, or
    ``relevance`` (needs ``q``). ``next_cursor`` continues the same search; a cursor given to
    another search is refused (422).
    """
    return await service.search_organizations(runtime=runtime, principal=principal, search=search)


@router.post("/v1/persons/search")
async def search_persons(
    search: PersonSearch, principal: CurrentPrincipal, runtime: CurrentRuntime
) -> PersonPage:
    """Persons the caller may see whose names (Cyrillic or Latin), phones or e-mails match,
    by name or relevance, a page at a time."""
    return await service.search_persons(runtime=runtime, principal=principal, search=search)
