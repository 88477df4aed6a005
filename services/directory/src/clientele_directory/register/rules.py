"""The unwanted counterparty register: who may not be done business with, and why.

An entry names an organization or a person, or an INN or an e-mail domain before any such
counterparty exists. An organization is blocked while an active entry names it, its INN or one
of its e-mail domains; a person while an entry names him or one of his e-mail domains.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Annotated, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, model_validator
from pydantic_core import PydanticCustomError

from clientele_directory.organizations.rules import Inn
from clientele_directory.values import LongText, ShortText, normalize_domain


class RegisterBasis(enum.StrEnum):
    ORGANIZATION = "organization"
    PERSON = "person"
    INN = "inn"
    EMAIL_DOMAIN = "email_domain"


def _valid_domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except ValueError:
        raise PydanticCustomError("domain", "not a domain name (like example.com)") from None


Domain = Annotated[str, AfterValidator(_valid_domain)]

TARGETS = ("organization_id", "person_id", "inn", "email_domain")


class RegisterEntryDraft(BaseModel):
    """A new entry: exactly one target, the reason, and who decided."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    organization_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = None
    inn: Inn | None = None
    email_domain: Domain | None = None
    reason: LongText
    decided_by: ShortText

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        given = [name for name in TARGETS if getattr(self, name) is not None]
        if len(given) != 1:
            raise PydanticCustomError(
                "target", "name exactly one of organization_id, person_id, inn, email_domain"
            )
        return self

    @property
    def basis(self) -> RegisterBasis:
        if self.organization_id is not None:
            return RegisterBasis.ORGANIZATION
        if self.person_id is not None:
            return RegisterBasis.PERSON
        if self.inn is not None:
            return RegisterBasis.INN
        return RegisterBasis.EMAIL_DOMAIN


class RegisterEntry(BaseModel):
    id: uuid.UUID
    basis: RegisterBasis
    organization_id: uuid.UUID | None = None
    person_id: uuid.UUID | None = None
    inn: str | None = None
    email_domain: str | None = None
    reason: str
    decided_by: str
    created_by: str
    created_at: datetime
    removed_at: datetime | None = None
    removed_by: str | None = None
    removal_reason: str | None = None


class RegisterMatch(BaseModel):
    """What a check found: the entry and the basis it matched on."""

    entry_id: uuid.UUID
    basis: RegisterBasis
    reason: str
    decided_by: str


class RegisterCheck(BaseModel):
    blocked: bool
    matches: list[RegisterMatch]
