"""Search rules (no I/O): filters, the query's terms, sort orders and opaque keyset cursors.

A filter is what a search, a dynamic list and an export share: the same document is saved in a
list and evaluated on every read. Text is matched against a folded document (lower case, ё as
е) by substring or trigram word similarity; phone-looking terms are matched by their digits.
"""

from __future__ import annotations

import base64
import binascii
import enum
import hashlib
import json
import re
import uuid
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from clientele_directory.organizations.rules import OrganizationStatus
from clientele_directory.values import Direction, Label, ShortText, _clean_text

MAX_TERMS = 8
MAX_CURSOR_CHARS = 2048

SearchText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
FilterList = Field(default=None, min_length=1, max_length=100)


class AttributeCondition(BaseModel):
    """A condition on one custom attribute; which operators apply depends on its type."""

    model_config = ConfigDict(extra="forbid")

    eq: Any = Field(default=None, description="equal to (any type)")
    in_: list[Any] | None = Field(
        default=None, alias="in", min_length=1, max_length=100, description="one of"
    )
    contains: Any = Field(default=None, description="multi-enum: holds this value")
    gte: Any = Field(default=None, description="number, date, money: at least")
    lte: Any = Field(default=None, description="number, date, money: at most")
    exists: bool | None = Field(default=None, description="has a value (true) or none (false)")

    def given(self) -> dict[str, Any]:
        """The operators used (their names as written: ``in`` rather than ``in_``)."""
        return self.model_dump(by_alias=True, exclude_none=True)


class OrganizationFilter(BaseModel):
    """Which organizations: text and field conditions, all of which must hold.

    Lists of values mean "any of"; ``tags`` and ``categories`` match an organization having any
    of the labels given, as written (labels are picked, not typed: the index stays usable).
    """

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    q: SearchText | None = Field(
        default=None,
        description="words in names, INN/KPP/OGRN, phones, e-mails or the names of its people",
    )
    status: list[OrganizationStatus] | None = FilterList
    directions: list[Direction] | None = FilterList
    tags: list[Label] | None = FilterList
    categories: list[Label] | None = FilterList
    industry: list[ShortText] | None = FilterList
    responsible_employee_id: list[uuid.UUID] | None = FilterList
    blocked: bool | None = None
    attributes: dict[str, AttributeCondition] = Field(default_factory=dict, max_length=20)

    def canonical(self) -> str:
        """A stable text of the filter (what cursors are bound to)."""
        return json.dumps(
            self.model_dump(mode="json", by_alias=True, exclude_none=True, exclude_defaults=True),
            sort_keys=True,
            ensure_ascii=False,
        )


class OrganizationSort(enum.StrEnum):
    NAME = "name"
    NAME_DESC = "-name"
    CREATED = "created"
    CREATED_DESC = "-created"
    RELEVANCE = "relevance"


class PersonSort(enum.StrEnum):
    NAME = "name"
    RELEVANCE = "relevance"


# --- terms -----------------------------------------------------------------------------------


def fold(text: str) -> str:
    """What documents and queries are compared in: lower case, ё as е (as ``directory_fold``)."""
    return text.lower().replace("ё", "е")


_PHONE_CHARS = re.compile(r"^[+\d()\-.\s]+$")


def phone_digits(term: str) -> str | None:
    """The digits of a term written like a phone number (5 digits or more), else None.

    A Russian number written with a trunk 8 (``8 495 ...``) is read as +7.
    """
    if not _PHONE_CHARS.match(term):
        return None
    digits = re.sub(r"\D", "", term)
    if len(digits) < 5:
        return None
    if len(digits) == 11 and digits.startswith("8") and not term.lstrip().startswith("+"):
        digits = "7" + digits[1:]
    return digits


def search_terms(q: str) -> list[str]:
    """The folded words of a query (each must match); a phone number written with spaces is
    one term of digits. Control characters are refused (ValueError)."""
    text = _clean_text(q.strip())
    whole = phone_digits(text)
    if whole is not None:
        return [whole]
    terms = []
    for word in fold(text).split():
        digits = phone_digits(word)
        terms.append(digits if digits is not None else word)
    return list(dict.fromkeys(terms))[:MAX_TERMS]


def like_pattern(term: str) -> str:
    """``%term%`` with LIKE's special characters escaped (escape character ``\\``)."""
    escaped = term.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# --- cursors ---------------------------------------------------------------------------------


class CursorError(ValueError):
    """A cursor that is malformed or belongs to another query."""


@dataclass(frozen=True)
class Cursor:
    """Where a page ended: the sort key of its last row, bound to the query it came from."""

    sort: str
    key: tuple[Any, ...]
    fingerprint: str


def fingerprint(*parts: str) -> str:
    """A short digest of what a cursor is bound to (filter, sort, list...)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return base64.urlsafe_b64encode(digest[:12]).decode().rstrip("=")


def encode_cursor(cursor: Cursor) -> str:
    """An opaque, URL-safe token of the cursor."""
    raw = json.dumps(
        {"v": 1, "s": cursor.sort, "k": list(cursor.key), "f": cursor.fingerprint},
        separators=(",", ":"),
        ensure_ascii=False,
        default=str,
    ).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(token: str, *, sort: str, fingerprint: str, size: int) -> tuple[Any, ...]:
    """The sort key a cursor carries; CursorError when it is malformed, belongs to another query
    or another order, or does not have ``size`` key values."""
    if len(token) > MAX_CURSOR_CHARS:
        raise CursorError("the cursor is too long")
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        data = json.loads(raw.decode())
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise CursorError("not a cursor of this API") from None
    if not isinstance(data, dict) or data.get("v") != 1 or not isinstance(data.get("k"), list):
        raise CursorError("not a cursor of this API")
    if data.get("s") != sort or data.get("f") != fingerprint:
        raise CursorError("the cursor belongs to another query or order; start again without it")
    key = tuple(data["k"])
    if len(key) != size or not all(
        value is None or isinstance(value, str | int | float) for value in key
    ):
        raise CursorError("not a cursor of this API")
    return key
