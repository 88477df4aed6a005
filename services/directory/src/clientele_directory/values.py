"""Value types and rules every directory entity shares (no I/O).

Text is NFC-normalized and refuses control characters (PostgreSQL cannot store NUL, and control
characters in names are always a mistake); phones become E.164; e-mails are validated and
normalized; sites become absolute http(s) URLs; label lists are deduplicated.
"""

from __future__ import annotations

import enum
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Annotated, Any

import phonenumbers
from clientele_shared.contacts import normalize_email as normalize_email
from clientele_shared.contacts import normalize_phone as normalize_phone
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationInfo,
    model_validator,
)
from pydantic_core import PydanticCustomError

MAX_LIST = 50
"""The most items any list field (phones, e-mails, tags, directions...) may hold."""

STORED: dict[str, Any] = {"stored": True}
"""Validation context for values read back from the database: they were checked when written,
so rules that depend on library data (phone numbering plans, e-mail syntax) are not re-applied,
and an update of phonenumbers or email-validator never makes a stored record unreadable."""


def is_stored(info: ValidationInfo | None) -> bool:
    return bool(info is not None and info.context and info.context.get("stored"))


def _clean_text(value: str, *, multiline: bool = False) -> str:
    value = unicodedata.normalize("NFC", value)
    if value.isprintable():  # no character of category C (nor Z but the space): nothing to refuse
        return value
    allowed = {"\n", "\t"} if multiline else set()
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") and char not in allowed:
            raise PydanticCustomError(
                "control_character", "text must not contain control or unassigned characters"
            )
    return value


def _clean_multiline(value: str) -> str:
    return _clean_text(value, multiline=True)


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(_clean_text),
]
ShortText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(_clean_text),
]
LongText = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=4000),
    AfterValidator(_clean_multiline),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(_clean_text),
]
Direction = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]


def _dedupe(items: Iterable[Any], key: Any = None) -> list[Any]:
    seen: set[Any] = set()
    result = []
    for item in items:
        marker = key(item) if key else item
        if marker not in seen:
            seen.add(marker)
            result.append(item)
    return result


def _unique_labels(values: list[str]) -> list[str]:
    return _dedupe(values, key=str.casefold)


def _sorted_directions(values: list[str]) -> list[str]:
    return sorted(set(values))


Labels = Annotated[list[Label], Field(max_length=MAX_LIST), AfterValidator(_unique_labels)]
Directions = Annotated[
    list[Direction], Field(max_length=MAX_LIST), AfterValidator(_sorted_directions)
]
RequiredDirections = Annotated[
    list[Direction], Field(min_length=1, max_length=MAX_LIST), AfterValidator(_sorted_directions)
]


def normalize_directions(directions: Iterable[str]) -> list[str]:
    """Directions as a sorted set."""
    return sorted(set(directions))


# --- countries -------------------------------------------------------------------------------


def _valid_country(value: str) -> str:
    code = value.strip().upper()
    if code not in phonenumbers.SUPPORTED_REGIONS:
        raise PydanticCustomError("country", "not an ISO 3166-1 alpha-2 country code")
    return code


CountryCode = Annotated[str, StringConstraints(max_length=2), AfterValidator(_valid_country)]


# --- phones ----------------------------------------------------------------------------------


class PhoneKind(enum.StrEnum):
    WORK = "work"
    MOBILE = "mobile"
    FAX = "fax"
    OTHER = "other"


class Phone(BaseModel):
    """A phone number in E.164 with its kind and extension."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    number: str = Field(description="E.164, e.g. +74951234567 (input may be any usual form)")
    kind: PhoneKind = PhoneKind.WORK
    extension: Annotated[str, StringConstraints(pattern=r"^[0-9]{1,10}$")] | None = None

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any, info: ValidationInfo) -> Any:
        if isinstance(data, str):
            data = {"number": data}
        if is_stored(info):
            return data
        if isinstance(data, dict) and isinstance(data.get("number"), str):
            try:
                number, extension = normalize_phone(data["number"])
            except ValueError as exc:
                raise PydanticCustomError("phone", "{reason}", {"reason": str(exc)}) from None
            data = {**data, "number": number}
            if extension and not data.get("extension"):
                data["extension"] = extension
        return data


def _unique_phones(values: list[Phone]) -> list[Phone]:
    return _dedupe(values, key=lambda phone: (phone.number, phone.extension))


Phones = Annotated[list[Phone], Field(max_length=MAX_LIST), AfterValidator(_unique_phones)]


# --- e-mails ---------------------------------------------------------------------------------


def email_domain(address: str) -> str:
    """The domain part of a normalized e-mail address."""
    return address.rpartition("@")[2].lower()


def _valid_email(value: str, info: ValidationInfo) -> str:
    if is_stored(info):
        return value
    try:
        return normalize_email(value)
    except ValueError as exc:
        raise PydanticCustomError("email", "{reason}", {"reason": str(exc)}) from None


Email = Annotated[str, StringConstraints(max_length=320), AfterValidator(_valid_email)]
Emails = Annotated[
    list[Email], Field(max_length=MAX_LIST), AfterValidator(lambda v: _dedupe(v, str.casefold))
]


def email_domains(addresses: Iterable[str]) -> list[str]:
    """The distinct domains of ``addresses``, sorted (kept for the unwanted register's lookups)."""
    return sorted({email_domain(address) for address in addresses})


_DOMAIN = re.compile(
    r"^(?=.{1,253}$)(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))*\.[a-z0-9-]{2,63}$"
)


def normalize_domain(value: str) -> str:
    """An e-mail domain as stored: lower case, IDNA (punycode), no leading '@'; ValueError."""
    candidate = value.strip().lstrip("@").rstrip(".").lower()
    try:
        candidate = candidate.encode("idna").decode("ascii")
    except UnicodeError:
        raise ValueError("not a domain name") from None
    if not _DOMAIN.match(candidate):
        raise ValueError("not a domain name")
    return candidate


# --- sites -----------------------------------------------------------------------------------

_URL = re.compile(r"^https?://[^\s/?#]+\.[^\s/?#]+(:\d{1,5})?([/?#]\S*)?$", re.IGNORECASE)


def _valid_site(value: str) -> str:
    site = value.strip()
    if "://" not in site:
        site = "https://" + site
    if not _URL.match(site):
        raise PydanticCustomError("site", "not a web address (http or https)")
    scheme, _, rest = site.partition("://")
    host, sep, tail = rest.partition("/")
    try:
        host = host.lower().encode("idna").decode("ascii") if not host.isascii() else host.lower()
    except UnicodeError:
        raise PydanticCustomError("site", "not a web address (http or https)") from None
    return f"{scheme.lower()}://{host}{sep}{tail}"


Site = Annotated[str, StringConstraints(max_length=2048), AfterValidator(_valid_site)]
Sites = Annotated[list[Site], Field(max_length=MAX_LIST), AfterValidator(_dedupe)]


# --- addresses -------------------------------------------------------------------------------


class Address(BaseModel):
    """A postal address: the full text as written, plus the parts search and mailings use."""

    model_config = ConfigDict(extra="forbid", frozen=True, str_strip_whitespace=True)

    text: Annotated[
        str,
        StringConstraints(strip_whitespace=True, min_length=1, max_length=1000),
        AfterValidator(_clean_text),
    ]
    country: CountryCode | None = None
    postal_code: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9 -]{2,12}$")] | None = None
    region: ShortText | None = None
    city: ShortText | None = None


# --- changes, versions -----------------------------------------------------------------------


def diff(old: Mapping[str, Any], new: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """``{field: {"old": ..., "new": ...}}`` for every field of ``fields`` whose value differs.

    Both mappings hold JSON-compatible values (``model_dump(mode="json")``).
    """
    return {
        name: {"old": old.get(name), "new": new.get(name)}
        for name in fields
        if old.get(name) != new.get(name)
    }


def creation_changes(new: Mapping[str, Any], fields: Iterable[str]) -> dict[str, Any]:
    """The audit changes of a creation: every field that has a value, from nothing."""
    return {
        name: {"old": None, "new": new[name]}
        for name in fields
        if new.get(name) not in (None, [], {}, "")
    }
