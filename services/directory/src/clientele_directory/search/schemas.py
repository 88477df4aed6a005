"""What a search is asked and answers."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from clientele_directory.organizations.rules import Organization
from clientele_directory.persons.rules import Person
from clientele_directory.search.rules import (
    OrganizationFilter,
    OrganizationSort,
    PersonSort,
    SearchText,
)


class OrganizationSearch(BaseModel):
    """A search: the filter, the order and the page (``cursor`` from the previous page)."""

    model_config = ConfigDict(extra="forbid")

    filter: OrganizationFilter = Field(default_factory=OrganizationFilter)
    sort: OrganizationSort = OrganizationSort.NAME
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=2048)


class OrganizationPage(BaseModel):
    items: list[Organization]
    next_cursor: str | None = Field(
        default=None, description="give it as `cursor` for the next page; null on the last page"
    )


class PersonSearch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    q: SearchText | None = Field(default=None, description="words of names, phones, e-mails")
    organization_id: uuid.UUID | None = Field(
        default=None, description="only people working at this organization"
    )
    blocked: bool | None = None
    sort: PersonSort = PersonSort.NAME
    limit: int = Field(default=50, ge=1, le=500)
    cursor: str | None = Field(default=None, max_length=2048)


class PersonPage(BaseModel):
    items: list[Person]
    next_cursor: str | None = None
