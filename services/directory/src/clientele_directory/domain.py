"""Directory domain rules: organization identity and validation (no I/O)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable
from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints
from stdnum.ru import inn as ru_inn
from stdnum.ru import ogrn as ru_ogrn


class OrganizationStatus(enum.StrEnum):
    PROSPECT = "prospect"
    CLIENT = "client"
    PARTNER = "partner"
    FORMER = "former"


def _valid_inn(value: str) -> str:
    if not ru_inn.is_valid(value):
        raise ValueError("INN has a wrong length or checksum")
    return ru_inn.compact(value)


def _valid_ogrn(value: str) -> str:
    if not ru_ogrn.is_valid(value):
        raise ValueError("OGRN has a wrong length or checksum")
    return ru_ogrn.compact(value)


Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
Direction = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]
Inn = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_valid_inn)]
Ogrn = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_valid_ogrn)]


class OrganizationDraft(BaseModel):
    """What a user submits to register an organization."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    legal_name: Name
    short_name: Name | None = None
    inn: Inn | None = None
    ogrn: Ogrn | None = None
    status: OrganizationStatus = OrganizationStatus.PROSPECT
    directions: list[Direction] = Field(min_length=1, max_length=50)


class Organization(OrganizationDraft):
    """An organization as stored, with its identity and version (the ETag)."""

    id: uuid.UUID
    version: int


def normalize_directions(directions: Iterable[str]) -> list[str]:
    """Directions as a sorted set."""
    return sorted(set(directions))
