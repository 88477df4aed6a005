"""Contact persons and their employments (a person at several organizations is one person).

Visibility: a person is visible through one of his own directions or through an employment at an
organization the reader sees. A person must stay visible to somebody: he needs a direction of
his own or an employment.
"""

from __future__ import annotations

import enum
import unicodedata
import uuid
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic import ValidationError as PydanticValidationError
from pydantic_core import PydanticCustomError

from clientele_directory.attributes.rules import attribute_changes
from clientele_directory.mailing_facts.rules import MailingFacts
from clientele_directory.merging.rules import (
    ATTRIBUTES,
    choice_errors,
    chosen_attributes,
    chosen_values,
    duplicate_score,
)
from clientele_directory.organizations.rules import MAX_ATTRIBUTES, PatchRejected
from clientele_directory.values import (
    STORED,
    Directions,
    Emails,
    Phones,
    ShortText,
    creation_changes,
    diff,
    email_domains,
    is_stored,
)

OLDEST_BIRTHDAY = date(1900, 1, 1)
_M = TypeVar("_M", bound=BaseModel)
MAX_EMPLOYMENTS_PER_REQUEST = 20


def _personal_name(value: str) -> str:
    if not any(char.isalpha() for char in value):
        raise PydanticCustomError("name", "a name needs at least one letter")
    return value


def _latin_name(value: str) -> str:
    for char in value:
        if char.isalpha():
            if "LATIN" not in unicodedata.name(char, ""):
                raise PydanticCustomError("latin", "Latin letters only")
        elif char not in " -'.’":
            raise PydanticCustomError("latin", "Latin letters, spaces, - ' and . only")
    return _personal_name(value)


PersonName = Annotated[ShortText, AfterValidator(_personal_name)]
LatinName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_latin_name),
]


def _past_birthday(value: date, info: ValidationInfo) -> date:
    if is_stored(info):
        return value
    if not OLDEST_BIRTHDAY <= value <= date.today():
        raise PydanticCustomError("birthday", "a birthday lies between 1900-01-01 and today")
    return value


Birthday = Annotated[date, AfterValidator(_past_birthday)]


class Consent(BaseModel):
    """What the person agreed to receive (mailings are refused without it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    email: bool = False
    sms: bool = False
    phone: bool = False


class PersonFields(BaseModel):
    """What a user may set on a person."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    last_name: PersonName | None = None
    first_name: PersonName | None = None
    middle_name: PersonName | None = None
    last_name_latin: LatinName | None = None
    first_name_latin: LatinName | None = None
    birthday: Birthday | None = None
    phones: Phones = Field(default_factory=list)
    emails: Emails = Field(default_factory=list)
    consent: Consent = Field(default_factory=Consent)
    directions: Directions = Field(default_factory=list)
    attributes: dict[str, Any] = Field(
        default_factory=dict,
        max_length=MAX_ATTRIBUTES,
        description="custom attribute values by key (see /v1/attributes)",
    )

    @model_validator(mode="after")
    def _named(self) -> Self:
        if not any((self.last_name, self.first_name, self.last_name_latin, self.first_name_latin)):
            raise PydanticCustomError("name", "a person needs a first or last name")
        return self


PERSON_FIELDS: tuple[str, ...] = tuple(
    name for name in PersonFields.model_fields if name != "attributes"
)


class EmploymentFields(BaseModel):
    """A person's position at an organization (work contacts, since/until)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    position: ShortText | None = None
    department: ShortText | None = None
    phones: Phones = Field(default_factory=list)
    emails: Emails = Field(default_factory=list)
    since: date | None = None
    until: date | None = None

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.since and self.until and self.until < self.since:
            raise PydanticCustomError("until", "an employment cannot end before it starts")
        return self


EMPLOYMENT_FIELDS: tuple[str, ...] = tuple(EmploymentFields.model_fields)


class EmploymentDraft(EmploymentFields):
    organization_id: uuid.UUID


class PersonDraft(PersonFields):
    """A new person, possibly with his employments (at least a direction or an employment)."""

    employments: list[EmploymentDraft] = Field(
        default_factory=list, max_length=MAX_EMPLOYMENTS_PER_REQUEST
    )

    @model_validator(mode="after")
    def _visible_to_somebody(self) -> Self:
        if not self.directions and not self.employments:
            raise PydanticCustomError(
                "orphan", "a person needs a direction of his own or an employment"
            )
        return self

    def fields(self) -> PersonFields:
        return PersonFields.model_validate(self.model_dump(exclude={"employments"}))


class Employment(EmploymentFields):
    id: uuid.UUID
    person_id: uuid.UUID
    organization_id: uuid.UUID
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=set(EMPLOYMENT_FIELDS))


class Person(PersonFields):
    """A person as read: identity, version, flags and the employments the reader may see."""

    id: uuid.UUID
    version: int
    blocked: bool = False
    employments: list[Employment] = Field(default_factory=list)
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None
    merged_into: uuid.UUID | None = Field(
        default=None, description="the person this one was merged into (when deleted so)"
    )

    def fields(self) -> dict[str, Any]:
        return self.model_dump(mode="json", include=set(PERSON_FIELDS))


class PersonCard(Person, MailingFacts):
    """A person as one reads it alone: also campaigns' consent per mailing channel and the
    addresses a mailing hard-bounced on, read-only (kept from campaigns' events)."""


class _MergePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    def given(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class PersonPatch(_MergePatch):
    last_name: Any = None
    first_name: Any = None
    middle_name: Any = None
    last_name_latin: Any = None
    first_name_latin: Any = None
    birthday: Any = None
    phones: Any = None
    emails: Any = None
    consent: Any = None
    directions: Any = None
    attributes: Any = None


class EmploymentPatch(_MergePatch):
    """The organization of an employment does not change: end it and start another."""

    position: Any = None
    department: Any = None
    phones: Any = None
    emails: Any = None
    since: Any = None
    until: Any = None


def _merged(model: type[_M], current: dict[str, Any], patch: _MergePatch) -> _M:
    try:
        return model.model_validate({**current, **patch.given()})
    except PydanticValidationError as exc:
        raise PatchRejected(exc.errors(include_url=False)) from None


def apply_person_patch(current: Person, patch: PersonPatch) -> PersonFields:
    """The person's fields after ``patch``; custom attribute values are kept (see
    ``organizations.apply_patch``)."""
    given = patch.model_copy()
    given.model_fields_set.discard("attributes")
    return _merged(PersonFields, {**current.fields(), "attributes": current.attributes}, given)


def apply_employment_patch(current: Employment, patch: EmploymentPatch) -> EmploymentFields:
    return _merged(EmploymentFields, current.fields(), patch)


def person_changes(current: Person, patched: PersonFields) -> dict[str, Any]:
    changes = diff(current.fields(), patched.model_dump(mode="json"), PERSON_FIELDS)
    return changes | attribute_changes(current.attributes, patched.attributes)


def employment_changes(current: Employment, patched: EmploymentFields) -> dict[str, Any]:
    return diff(current.fields(), patched.model_dump(mode="json"), EMPLOYMENT_FIELDS)


def person_created_changes(person: Person) -> dict[str, Any]:
    changes = creation_changes(person.fields(), PERSON_FIELDS)
    if not any(person.consent.model_dump().values()):
        changes.pop("consent", None)
    return changes | attribute_changes({}, person.attributes)


def employment_created_changes(employment: Employment) -> dict[str, Any]:
    changes = creation_changes(employment.fields(), EMPLOYMENT_FIELDS)
    changes["organization_id"] = {"old": None, "new": str(employment.organization_id)}
    return changes


def person_storage_values(fields: PersonFields) -> dict[str, Any]:
    values = fields.model_dump(mode="json", include=set(PERSON_FIELDS))
    values["birthday"] = fields.birthday
    values["email_domains"] = email_domains(fields.emails)
    values["attributes"] = fields.attributes
    return values


def employment_storage_values(fields: EmploymentFields) -> dict[str, Any]:
    values = fields.model_dump(mode="json", include=set(EMPLOYMENT_FIELDS))
    values["since"], values["until"] = fields.since, fields.until
    return values


MERGED_LISTS = frozenset({"phones", "emails", "directions"})


def stricter_consent(*consents: Consent) -> Consent:
    """Agreement only where every one agreed: a merge never widens what a person consented to."""
    return Consent(
        **{channel: all(getattr(c, channel) for c in consents) for channel in Consent.model_fields}
    )


def merge_person_fields(
    survivor: Person, other: Person, take: Iterable[str], values: Mapping[str, Any]
) -> tuple[PersonFields, dict[str, Any]]:
    """The survivor's fields after merging ``other`` into it, validated (PatchRejected if not),
    and the patch of custom attribute values still to be checked against their definitions.

    Like an organization's merge (``organizations.merge_fields``): the survivor's values stay,
    empty ones are filled, phones, e-mails and directions are united, ``take`` and ``values``
    choose otherwise. Consent is the exception: whatever is chosen, the result agrees to a
    channel only when both persons (and the chosen value) did.
    """
    errors = choice_errors(PERSON_FIELDS, take, values)
    if errors:
        raise PatchRejected(errors)
    mine, theirs = survivor.fields(), other.fields()
    merged = chosen_values(
        mine, theirs, PERSON_FIELDS, united=MERGED_LISTS, take=take, values=values
    )
    attributes, patch = chosen_attributes(survivor.attributes, other.attributes, take)
    try:
        fields = PersonFields.model_validate({**merged, "attributes": attributes})
    except PydanticValidationError as exc:
        raise PatchRejected(exc.errors(include_url=False)) from None
    consent = stricter_consent(survivor.consent, other.consent, fields.consent)
    return fields.model_copy(update={"consent": consent}), {**patch, **values.get(ATTRIBUTES, {})}


def same_employment(mine: Employment, theirs: Employment) -> bool:
    """Two employments of one merged person are one: the same organization, the same position
    (case and spacing aside, or both without one)."""

    def position(job: Employment) -> str:
        return " ".join((job.position or "").casefold().split())

    return mine.organization_id == theirs.organization_id and position(mine) == position(theirs)


def folded_employment(mine: Employment, theirs: Employment) -> EmploymentFields:
    """The survivor's employment after taking in the merged person's one at the same place: its
    values stay, empty ones are filled, work phones and e-mails are united; it started at the
    earlier ``since`` and, unless either is still open (no ``until``), ended at the later one."""
    merged = chosen_values(
        mine.fields(),
        theirs.fields(),
        EMPLOYMENT_FIELDS,
        united=frozenset({"phones", "emails"}),
        take=(),
        values={},
    )
    starts = [day for day in (mine.since, theirs.since) if day is not None]
    merged["since"] = min(starts) if starts else None
    open_ended = mine.until is None or theirs.until is None
    merged["until"] = None if open_ended else max(d for d in (mine.until, theirs.until) if d)
    return EmploymentFields.model_validate(merged, context=STORED)


NAME_SIMILARITY = 0.5
"""Trigram similarity of two names (in Latin letters) from which they are a duplicate candidate."""


class Evidence(enum.StrEnum):
    """Why a person may be a duplicate of another."""

    EMAIL = "email"
    PHONE = "phone"
    NAME = "name"
    BIRTHDAY = "birthday"


BirthdayAgreement = Literal["same", "different", "unknown"]


class DuplicateCandidate(BaseModel):
    """A person who may be the same human as the one asked about, and why."""

    person: Person
    matched_by: list[Evidence] = Field(
        description="a shared e-mail (personal or work, case aside), a shared personal phone "
        "(E.164 and extension), a similar name (Cyrillic and Latin compared in Latin letters), "
        "the same birthday"
    )
    name_similarity: float = Field(description="0..1, the best of the names compared")
    birthday: BirthdayAgreement = Field(description="unknown when either birthday is missing")
    score: float = Field(
        description="the order: 2 per shared e-mail or phone evidence, plus the name "
        "similarity, plus 0.5 for the same birthday, minus 1 for a different one"
    )


def birthday_agreement(mine: date | None, theirs: date | None) -> BirthdayAgreement:
    if mine is None or theirs is None:
        return "unknown"
    return "same" if mine == theirs else "different"


def duplicate_candidate(
    target: Person, person: Person, *, email: bool, phone: bool, name_similarity: float
) -> DuplicateCandidate:
    """The evidence that ``person`` duplicates ``target`` and the score that ranks him."""
    birthday = birthday_agreement(target.birthday, person.birthday)
    matched = [
        evidence
        for evidence, found in (
            (Evidence.EMAIL, email),
            (Evidence.PHONE, phone),
            (Evidence.NAME, name_similarity >= NAME_SIMILARITY),
            (Evidence.BIRTHDAY, birthday == "same"),
        )
        if found
    ]
    adjustment = {"same": 0.5, "different": -1.0, "unknown": 0.0}[birthday]
    score = duplicate_score(email + phone, name_similarity, adjustment)
    return DuplicateCandidate(
        person=person,
        matched_by=matched,
        name_similarity=round(name_similarity, 3),
        birthday=birthday,
        score=score,
    )


def keeps_person_visible(directions: list[str], live_employments: int) -> bool:
    """A person must keep a direction of his own or an employment, or nobody but admins sees him."""
    return bool(directions) or live_employments > 0
