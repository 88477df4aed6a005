"""What a mailing's template may refer to, and each recipient's values for it (no I/O).

The template engine is ``clientele_shared.templating`` (ADR 37): a sandbox, the fields a
template needs found up front, Russian salutations and declined names.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from clientele_shared.directory_read_models import OrganizationRecord, PersonRecord
from clientele_shared.templating import (
    PERSON_FIELDS,
    MessageTemplate,
    PersonFields,
    TemplateInvalid,
    TemplateProblem,
)
from clientele_shared.values import Directions, Title
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from clientele_campaigns.contacts.rules import Contact

MAX_SUBJECT = 500
MAX_BODY = 200_000
Subject = Annotated[str, StringConstraints(min_length=1, max_length=MAX_SUBJECT)]
Body = Annotated[str, StringConstraints(max_length=MAX_BODY)]

VARIABLES: dict[str, frozenset[str] | None] = {
    "person": PERSON_FIELDS | {"email", "position", "birthday"},
    "organization": frozenset({"name", "legal_name", "short_name", "inn"}),
    "attributes": None,
    "event": frozenset({"title", "place", "kind", "planned_start", "planned_end", "starts"}),
    "mailing": frozenset({"title"}),
    "unsubscribe_url": None,
}
"""Every variable a mailing's template may use, with its fields (None: custom attributes,
any name)."""


class TemplateParts(BaseModel):
    """The message of a mailing: a subject and an HTML and/or a plain-text part."""

    model_config = ConfigDict(extra="forbid")

    subject: Subject
    html: Body | None = None
    text: Body | None = None


class StoredTemplateDraft(BaseModel):
    """A new stored template: a name, its directions and its parts."""

    model_config = ConfigDict(extra="forbid")

    name: Title
    directions: Directions = Field(min_length=1)
    template: TemplateParts


class StoredTemplatePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Title | None = None
    template: TemplateParts | None = None


class StoredTemplate(BaseModel):
    """A stored template's newest version."""

    model_config = ConfigDict(extra="ignore")

    id: uuid.UUID
    name: str
    directions: list[str]
    subject: str
    html: str | None = None
    text: str | None = None
    version: int
    created_at: datetime
    created_by: str
    updated_at: datetime
    updated_by: str

    @property
    def parts(self) -> TemplateParts:
        return TemplateParts(subject=self.subject, html=self.html, text=self.text)


class TemplateVersion(BaseModel):
    """One kept version of a stored template."""

    model_config = ConfigDict(extra="ignore")

    version: int
    name: str
    subject: str
    html: str | None = None
    text: str | None = None
    saved_at: datetime
    saved_by: str


class TemplateIssue(BaseModel):
    part: str
    kind: str
    detail: str
    line: int | None = None


class TemplateCheck(BaseModel):
    """A template checked: the fields it refers to, those every recipient needs, problems."""

    fields: list[str]
    required: list[str]
    unsubscribe_link: bool
    problems: list[TemplateIssue] = Field(default_factory=list)


def _problem(problem: TemplateProblem) -> TemplateIssue:
    return TemplateIssue(
        part=problem.part, kind=problem.kind, detail=problem.detail, line=problem.line
    )


def compile_parts(parts: TemplateParts) -> MessageTemplate:
    """The compiled template (raises :class:`TemplateInvalid` listing every problem)."""
    return MessageTemplate(
        subject=parts.subject, html=parts.html, text=parts.text, variables=VARIABLES
    )


def check(parts: TemplateParts) -> TemplateCheck:
    try:
        template = compile_parts(parts)
    except TemplateInvalid as invalid:
        return TemplateCheck(
            fields=[],
            required=[],
            unsubscribe_link=False,
            problems=[_problem(p) for p in invalid.problems],
        )
    return TemplateCheck(
        fields=sorted(template.fields),
        required=sorted(".".join(path) for path in template.required),
        unsubscribe_link=template.refers_to("unsubscribe_url"),
    )


def problems_of(invalid: TemplateInvalid) -> list[dict[str, Any]]:
    """The problems as 422 errors (FastAPI's shape)."""
    return [
        {
            "loc": ("template", p.part),
            "msg": p.detail if p.line is None else f"line {p.line}: {p.detail}",
            "type": p.kind,
        }
        for p in invalid.problems
    ]


EVENT_TIME_ZONE = ZoneInfo("Europe/Moscow")
"""Events keep no time zone of their own yet: their times are written in Moscow time."""


def _date(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(EVENT_TIME_ZONE).strftime("%d.%m.%Y")


def _moment(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(EVENT_TIME_ZONE).strftime("%d.%m.%Y %H:%M")


def event_fields(event: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """An event's fields as a template sees them (dates as Russians write them)."""
    if event is None:
        return None
    return {
        "title": event["title"],
        "place": event.get("place"),
        "kind": event["kind"],
        "planned_start": _moment(event["planned_start"]),
        "planned_end": _moment(event["planned_end"]),
        "starts": _date(event["planned_start"]),
    }


def context(
    *,
    person: PersonRecord,
    contact: Contact | None,
    organization: OrganizationRecord | None,
    email: str | None,
    event: Mapping[str, Any] | None,
    mailing_title: str,
    unsubscribe_url: str | None,
) -> dict[str, Any]:
    """One recipient's values for every variable (absent values are None: a template that
    needs one finds it missing)."""
    position = None
    if contact is not None and organization is not None:
        position = next(
            (
                e.position
                for e in contact.employments
                if e.organization_id == organization.organization_id
            ),
            None,
        )
    return {
        "person": PersonFields(
            first_name=person.first_name,
            middle_name=person.middle_name,
            last_name=person.last_name,
            gender=contact.gender if contact else None,
            extra={
                "email": email,
                "position": position,
                "birthday": contact.birthday.strftime("%d.%m")
                if contact and contact.birthday
                else None,
            },
        ),
        "organization": None
        if organization is None
        else {
            "name": organization.short_name or organization.legal_name,
            "legal_name": organization.legal_name,
            "short_name": organization.short_name,
            "inn": organization.inn,
        },
        "attributes": contact.attributes if contact else {},
        "event": event_fields(event),
        "mailing": {"title": mailing_title},
        "unsubscribe_url": unsubscribe_url,
    }
