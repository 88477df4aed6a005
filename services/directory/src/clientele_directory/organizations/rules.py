"""Organizations: identity (INN/KPP/OGRN), contacts, classification, and the rules of a change."""

from __future__ import annotations

import enum
import re
import uuid
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Annotated, Any, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError
from stdnum.ru import inn as ru_inn
from stdnum.ru import ogrn as ru_ogrn

from clientele_directory.attributes.rules import attribute_changes
from clientele_directory.merging.rules import (
    ATTRIBUTES,
    choice_errors,
    chosen_attributes,
    chosen_values,
    duplicate_score,
)
from clientele_directory.values import (
    Address,
    CountryCode,
    Emails,
    Labels,
    Name,
    Phones,
    RequiredDirections,
    ShortText,
    Sites,
    creation_changes,
    diff,
    email_domains,
)

MAX_ATTRIBUTES = 200


class OrganizationStatus(enum.StrEnum):
    PROSPECT = "prospect"
    CLIENT = "client"
    PARTNER = "partner"
    FORMER = "former"


_EXPONENT = re.compile(r"^\d[.,]\d+E\+?\d+$", re.IGNORECASE)
_DATE = re.compile(r"^(?:\d{4}-\d{2}-\d{2}(?:[T ][\d:.]+)?|\d{1,2}[./]\d{1,2}[./]\d{2,4})$")
"""A date as a spreadsheet cell gives it (ISO from an .xlsx date cell, 01.03.2024 typed)."""
_EXCEL_TEXT = "(format the column as text)"


def valid_inn(value: str) -> str:
    """The compact INN; ValueError saying what is wrong: a number in scientific notation, a
    date or a lost leading zero (what Excel does to a column not formatted as text), the
    length, the checksum."""
    if len(value) in (10, 12) and value.isascii() and value.isdigit():
        # already compact: only the check digits (what is_valid would compute after compact)
        if len(value) == 10:
            check = value[-1] == ru_inn.calc_company_check_digit(value)
        else:
            check = value[-2:] == ru_inn.calc_personal_check_digits(value)
        if check:
            return value
    elif ru_inn.is_valid(value):
        return str(ru_inn.compact(value))
    digits = str(ru_inn.compact(value))
    if _EXPONENT.match(digits):
        raise ValueError(
            f"INN {value} is a number in scientific notation: the cell was turned into a number"
            f" by Excel {_EXCEL_TEXT}"
        )
    if _DATE.match(value.strip()):
        raise ValueError(
            f"INN holds a date ({value.strip()}): the cell was turned into a date by Excel"
            f" {_EXCEL_TEXT}"
        )
    if digits.isdigit() and len(digits) in (9, 11):
        raise ValueError(
            f"INN has {len(digits)} digits: a leading zero lost by Excel? {_EXCEL_TEXT}"
        )
    if not digits.isdigit() or len(digits) not in (10, 12):
        raise ValueError(f"INN has {len(digits)} characters: 10 or 12 digits expected")
    raise ValueError("INN has a wrong checksum")


def _valid_inn(value: str) -> str:
    try:
        return valid_inn(value)
    except ValueError as exc:
        raise PydanticCustomError("inn", str(exc)) from None


def ogrn_is_valid(value: str) -> bool:
    """An OGRN (13 digits) or OGRNIP (15): its check digit is the last digit of the remainder.

    python-stdnum 2.2 compares an OGRNIP's check digit with the whole remainder modulo 13, so the
    23% of valid OGRNIPs whose remainder is 10, 11 or 12 (check digit 0, 1 or 2) fail there; the
    rule (FNS order of 16.09.2020 No. ED-7-14/617@ and its predecessors) keeps the remainder's
    last digit, as for the 13-digit OGRN.
    """
    number = str(ru_ogrn.compact(value))
    if len(number) != 15 or not number.isdigit() or number[0] not in "34":
        return bool(ru_ogrn.is_valid(number))
    return int(number[:-1]) % 13 % 10 == int(number[-1])


def _valid_ogrn(value: str) -> str:
    if not ogrn_is_valid(value):
        raise PydanticCustomError("ogrn", "OGRN has a wrong length or checksum")
    return str(ru_ogrn.compact(value))


_KPP = re.compile(r"^[0-9]{4}[0-9A-Z]{2}[0-9]{3}$")


def _valid_kpp(value: str) -> str:
    """KPP has no checksum: 4 digits (tax office), 2 digits or letters (reason), 3 digits."""
    compact = value.replace(" ", "").upper()
    if compact.isdigit() and len(compact) == 8:
        raise PydanticCustomError(
            "kpp", f"KPP has 8 digits: a leading zero lost by Excel? {_EXCEL_TEXT}"
        )
    if not _KPP.match(compact):
        raise PydanticCustomError("kpp", "KPP must be 9 characters: NNNNPPNNN")
    return compact


Inn = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_valid_inn)]
Kpp = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_valid_kpp)]
Ogrn = Annotated[str, StringConstraints(strip_whitespace=True), AfterValidator(_valid_ogrn)]


class OrganizationFields(BaseModel):
    """Everything a user may set on an organization, with the rules between fields.

    Russian identifiers are optional (a prospect may not have them yet, a foreign company has
    none); when given they are checked: INN and OGRN by checksum, KPP by format, and KPP only
    with a 10-digit (legal entity) INN, a 13-digit OGRN only with a 10-digit INN and a 15-digit
    OGRNIP only with a 12-digit INN.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    legal_name: Name
    short_name: Name | None = None
    country: CountryCode = "RU"
    inn: Inn | None = None
    kpp: Kpp | None = None
    ogrn: Ogrn | None = None
    foreign_tax_id: ShortText | None = Field(
        default=None, description="a foreign company's own registration or tax number"
    )
    legal_address: Address | None = None
    actual_address: Address | None = None
    postal_address: Address | None = None
    phones: Phones = Field(default_factory=list)
    emails: Emails = Field(default_factory=list)
    sites: Sites = Field(default_factory=list)
    industry: ShortText | None = None
    categories: Labels = Field(default_factory=list)
    tags: Labels = Field(default_factory=list)
    responsible_employee_id: uuid.UUID | None = None
    status: OrganizationStatus = OrganizationStatus.PROSPECT
    directions: RequiredDirections
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description="custom attribute values by key (see /v1/attributes)",
    )

    @model_validator(mode="after")
    def _identifiers_agree(self) -> Self:
        if self.kpp and not (self.inn and len(self.inn) == 10):
            raise PydanticCustomError("kpp", "KPP needs the 10-digit INN of a legal entity")
        if self.ogrn and self.inn:
            expected = 13 if len(self.inn) == 10 else 15
            if len(self.ogrn) != expected:
                raise PydanticCustomError(
                    "ogrn",
                    "a {inn}-digit INN goes with a {ogrn}-digit OGRN",
                    {"inn": len(self.inn), "ogrn": expected},
                )
        return self


ORGANIZATION_FIELDS: tuple[str, ...] = tuple(
    name for name in OrganizationFields.model_fields if name != "attributes"
)
"""The fields diffs compare one by one; custom attributes are compared per key."""


class OrganizationDraft(OrganizationFields):
    """What a user submits to register an organization."""


class OrganizationPatch(BaseModel):
    """A JSON merge patch of an organization: the fields present are set, ``null`` clears."""

    model_config = ConfigDict(extra="forbid")

    legal_name: Any = None
    short_name: Any = None
    country: Any = None
    inn: Any = None
    kpp: Any = None
    ogrn: Any = None
    foreign_tax_id: Any = None
    legal_address: Any = None
    actual_address: Any = None
    postal_address: Any = None
    phones: Any = None
    emails: Any = None
    sites: Any = None
    industry: Any = None
    categories: Any = None
    tags: Any = None
    responsible_employee_id: Any = None
    status: Any = None
    directions: Any = None
    attributes: Any = None

    def given(self) -> dict[str, Any]:
        """The fields the patch sets (``None`` for cleared ones)."""
        return {name: getattr(self, name) for name in self.model_fields_set}


class Organization(OrganizationFields):
    """An organization as stored and read: identity, version (the ETag) and flags."""

    id: uuid.UUID
    version: int
    blocked: bool = Field(default=False, description="listed in the unwanted counterparty register")
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    merged_into: uuid.UUID | None = Field(
        default=None, description="the organization this one was merged into (when deleted so)"
    )

    def fields(self) -> dict[str, Any]:
        """The user-settable fields as JSON values (what audit and events compare)."""
        return self.model_dump(mode="json", include=set(ORGANIZATION_FIELDS))


class PatchRejected(ValueError):
    """A patch that would leave the organization invalid; carries pydantic's errors."""

    def __init__(self, errors: list[Any]) -> None:
        super().__init__("the patched organization is not valid")
        self.errors = errors


def apply_patch(current: Organization, patch: OrganizationPatch) -> OrganizationFields:
    """The organization's fields after ``patch``, validated as a whole (PatchRejected if not).

    Custom attribute values are kept as they are: they are patched against their definitions
    (``attributes.apply_attribute_patch``) by the caller, who reads the definitions.
    """
    given = {name: value for name, value in patch.given().items() if name != "attributes"}
    merged = {**current.fields(), "attributes": current.attributes, **given}
    try:
        return OrganizationFields.model_validate(merged)
    except PydanticValidationError as exc:
        raise PatchRejected(exc.errors(include_url=False)) from None


def changes_between(current: Organization, patched: OrganizationFields) -> dict[str, Any]:
    """Field-level ``{"old", "new"}`` of what the patch really changes (custom attributes as
    ``attributes.<key>``)."""
    changes = diff(current.fields(), patched.model_dump(mode="json"), ORGANIZATION_FIELDS)
    return changes | attribute_changes(current.attributes, patched.attributes)


def created_changes(org: Organization) -> dict[str, Any]:
    return creation_changes_of(org.fields(), org.attributes)


def creation_changes_of(fields: Mapping[str, Any], attributes: Mapping[str, Any]) -> dict[str, Any]:
    """The audit changes of a new organization from its fields' JSON values (``fields()``, or
    ``storage_values``) and its custom attribute values."""
    return creation_changes(fields, ORGANIZATION_FIELDS) | attribute_changes({}, attributes)


def moved_directions(old: list[str], new: list[str]) -> set[str]:
    """Directions a change adds or removes: the writer must belong to each of them."""
    return set(old) ^ set(new)


def storage_values(fields: OrganizationFields) -> dict[str, Any]:
    """Column values of an organization's fields (plus the derived e-mail domains)."""
    values = fields.model_dump(mode="json", include=set(ORGANIZATION_FIELDS))
    values["responsible_employee_id"] = fields.responsible_employee_id
    values["email_domains"] = email_domains(fields.emails)
    values["attributes"] = fields.attributes
    return values


MERGED_LISTS = frozenset({"phones", "emails", "sites", "categories", "tags", "directions"})


def merge_fields(
    survivor: Organization,
    other: Organization,
    take: Iterable[str],
    values: Mapping[str, Any],
) -> tuple[OrganizationFields, dict[str, Any]]:
    """The survivor's fields after merging ``other`` into it, validated (PatchRejected if not),
    and the patch of custom attribute values still to be checked against their definitions.

    By default the survivor's values stay; its empty fields are filled from the other; list
    fields (phones, e-mails, sites, categories, tags, directions) are united, so nobody loses
    sight of the record; custom attributes missing on the survivor come from the other (see
    ``merging``). Fields named in ``take`` come from the other as they are; ``values`` sets
    fields explicitly last (``values["attributes"]`` is a merge patch of attribute values).
    """
    errors = choice_errors(ORGANIZATION_FIELDS, take, values)
    if errors:
        raise PatchRejected(errors)
    merged = chosen_values(
        survivor.fields(),
        other.fields(),
        ORGANIZATION_FIELDS,
        united=MERGED_LISTS,
        take=take,
        values=values,
    )
    attributes, patch = chosen_attributes(survivor.attributes, other.attributes, take)
    try:
        fields = OrganizationFields.model_validate({**merged, "attributes": attributes})
    except PydanticValidationError as exc:
        raise PatchRejected(exc.errors(include_url=False)) from None
    return fields, {**patch, **values.get(ATTRIBUTES, {})}


class OrganizationEvidence(enum.StrEnum):
    """Why an organization may be a duplicate of another."""

    INN = "inn"
    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"


class OrganizationDuplicate(BaseModel):
    """An organization that may be the same company as the one asked about, and why."""

    organization: Organization
    matched_by: list[OrganizationEvidence] = Field(
        description="the same INN, a shared e-mail, a shared phone (E.164), a similar name "
        "(without its legal form)"
    )
    name_similarity: float = Field(description="0..1, of the names without their legal forms")
    score: float = Field(
        description="the order: 2 per shared INN, e-mail or phone evidence, plus the name "
        "similarity"
    )


def organization_duplicate(
    organization: Organization,
    *,
    inn: bool,
    email: bool,
    phone: bool,
    name_similarity: float,
    similar_name: bool,
) -> OrganizationDuplicate:
    """The evidence that ``organization`` duplicates another and the score that ranks it."""
    found = (
        (OrganizationEvidence.INN, inn),
        (OrganizationEvidence.EMAIL, email),
        (OrganizationEvidence.PHONE, phone),
        (OrganizationEvidence.NAME, similar_name),
    )
    return OrganizationDuplicate(
        organization=organization,
        matched_by=[evidence for evidence, matched in found if matched],
        name_similarity=round(name_similarity, 3),
        score=duplicate_score(inn + email + phone, name_similarity),
    )
