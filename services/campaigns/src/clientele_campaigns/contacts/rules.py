"""What a mailing needs of a person beyond the persons read model, as one row of the contacts
read model (no I/O)."""

from __future__ import annotations

import re
import uuid
from datetime import date
from typing import Any

from clientele_shared.events.schemas.directory import OrganizationState, PersonState
from pydantic import BaseModel, ConfigDict

TIME_ZONE_ATTRIBUTES = ("time_zone", "timezone", "часовой пояс")
"""Custom attributes of a person or organization that may name its IANA time zone."""
GENDER_ATTRIBUTES = ("gender", "пол")
"""Custom attributes a person's record may state the gender in."""
_GENDERS = {"male": "male", "m": "male", "м": "male", "муж": "male", "мужской": "male"} | {
    "female": "female",
    "f": "female",
    "ж": "female",
    "жен": "female",
    "женский": "female",
}


class Employment(BaseModel):
    model_config = ConfigDict(frozen=True)

    organization_id: uuid.UUID
    position: str | None = None
    emails: list[str] = []


class Contact(BaseModel):
    """A person's addresses, birthday, recorded gender, attributes and live employments."""

    model_config = ConfigDict(frozen=True)

    person_id: uuid.UUID
    emails: list[str] = []
    birthday: date | None = None
    gender: str | None = None
    attributes: dict[str, Any] = {}
    employments: list[Employment] = []

    def email_at(self, organization_id: uuid.UUID | None) -> str | None:
        """The address to write to about an organization: the employment's own first, else
        the person's."""
        for employment in self.employments:
            if employment.organization_id == organization_id and employment.emails:
                return employment.emails[0]
        return self.emails[0] if self.emails else None


def recorded_gender(attributes: dict[str, Any]) -> str | None:
    for name in GENDER_ATTRIBUTES:
        value = attributes.get(name)
        if isinstance(value, str) and value.strip().lower() in _GENDERS:
            return _GENDERS[value.strip().lower()]
    return None


def phone_key(value: Any) -> str | None:
    """A phone number as matching compares it: ``+`` and its digits (the directory keeps
    E.164; a registrant writes "+7 (495) 123-45-67"; a leading 8 of a Russian number is +7)."""
    if not isinstance(value, str):
        return None
    digits = re.sub(r"\D", "", value)
    if len(digits) == 11 and digits.startswith("8") and not value.strip().startswith("+"):
        digits = "7" + digits[1:]
    return f"+{digits}" if 8 <= len(digits) <= 15 else None


def _address(value: str) -> str:
    return value.strip().lower()


def contact_columns(state: PersonState) -> dict[str, Any]:
    """The read model's row of a person's state snapshot."""
    employments = [
        {
            "organization_id": str(e.organization_id),
            "position": e.position,
            "emails": [_address(x) for x in e.emails if x.strip()],
        }
        for e in state.employments
    ]
    emails = [_address(x) for x in state.emails if x.strip()]
    phones = [p.get("number") for p in state.phones]
    for e in state.employments:
        emails += [_address(x) for x in e.emails if x.strip()]
        phones += [p.get("number") for p in e.phones]
    keys = {f"email:{x}" for x in emails} | {
        f"phone:{number}" for p in phones if (number := phone_key(p)) is not None
    }
    return {
        "person_id": state.person_id,
        "emails": [_address(x) for x in state.emails if x.strip()],
        "match_keys": sorted(keys),
        "birthday": state.birthday,
        "gender": recorded_gender(state.attributes),
        "attributes": state.attributes,
        "employments": employments,
        "organization_ids": sorted({e.organization_id for e in state.employments}),
        "version": state.version,
        "state_revision": state.revision,
    }


class Premises(BaseModel):
    """Where paper and faxes reach an organization."""

    model_config = ConfigDict(frozen=True)

    organization_id: uuid.UUID
    postal_address: dict[str, Any] | None = None
    fax: str | None = None
    industry: str | None = None
    time_zone: str | None = None


def organization_columns(state: OrganizationState) -> dict[str, Any]:
    """The organizations read model's row of a state snapshot: the postal address (else the
    actual, else the legal one), the first fax number, the industry and the time zone its
    attributes name (greetings: ADR 51)."""
    fax = next((p.get("number") for p in state.phones if p.get("kind") == "fax"), None)
    zone = next(
        (
            value.strip()[:64]
            for name in TIME_ZONE_ATTRIBUTES
            if isinstance(value := state.attributes.get(name), str) and value.strip()
        ),
        None,
    )
    return {
        "organization_id": state.organization_id,
        "postal_address": state.postal_address or state.actual_address or state.legal_address,
        "fax": fax if isinstance(fax, str) else None,
        "industry": state.industry.strip()[:200] if state.industry else None,
        "time_zone": zone,
        "version": state.version,
        "state_revision": state.revision,
    }
