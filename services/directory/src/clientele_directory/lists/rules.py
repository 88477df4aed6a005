"""Lists of organizations (no I/O): static lists keep their members, dynamic lists keep a filter
evaluated on every read. Either way a reader sees only the members he may see."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator
from pydantic_core import PydanticCustomError

from clientele_directory.imports.headers import map_headers
from clientele_directory.organizations.rules import valid_inn
from clientele_directory.search.rules import OrganizationFilter
from clientele_directory.tabular import TabularError
from clientele_directory.values import LongText, Name, RequiredDirections, diff

MAX_IDS_PER_REQUEST = 1000
EVENT_CHUNK = 1000
"""Membership events carry at most this many ids each (a change by filter may touch many)."""


class ListKind(enum.StrEnum):
    STATIC = "static"
    DYNAMIC = "dynamic"


class ListDraft(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: Name
    description: LongText | None = None
    kind: ListKind = ListKind.STATIC
    filter: OrganizationFilter | None = Field(
        default=None, description="the saved filter of a dynamic list"
    )
    directions: RequiredDirections

    @model_validator(mode="after")
    def _filter_fits_kind(self) -> Self:
        if self.kind is ListKind.DYNAMIC and self.filter is None:
            raise PydanticCustomError("filter", "a dynamic list needs a filter")
        if self.kind is ListKind.STATIC and self.filter is not None:
            raise PydanticCustomError("filter", "a static list has members, not a filter")
        return self


LIST_FIELDS = ("name", "description", "filter", "directions")


class ListPatch(BaseModel):
    """A merge patch; the kind of a list does not change."""

    model_config = ConfigDict(extra="forbid")

    name: Any = None
    description: Any = None
    filter: Any = None
    directions: Any = None

    def given(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.model_fields_set}


class OrganizationList(BaseModel):
    id: uuid.UUID
    name: str
    description: str | None = None
    kind: ListKind
    filter: OrganizationFilter | None = None
    directions: list[str]
    version: int
    created_by: str
    created_at: datetime | None = None
    updated_at: datetime | None = None
    deleted_at: datetime | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(
            mode="json", include=set(LIST_FIELDS), by_alias=True, exclude_none=False
        )


def apply_list_patch(current: OrganizationList, patch: ListPatch) -> ListDraft:
    """The list after ``patch``, validated as a whole (pydantic ValidationError if not)."""
    merged = {**current.fields(), "kind": current.kind.value, **patch.given()}
    return ListDraft.model_validate(merged)


def list_changes(current: OrganizationList, patched: ListDraft) -> dict[str, Any]:
    new = patched.model_dump(mode="json", include=set(LIST_FIELDS), by_alias=True)
    return diff(current.fields(), new, LIST_FIELDS)


def storage_values(draft: ListDraft) -> dict[str, Any]:
    values = draft.model_dump(mode="json", include={"name", "description", "directions"})
    values["kind"] = draft.kind.value
    values["filter"] = (
        draft.filter.model_dump(mode="json", by_alias=True, exclude_none=True)
        if draft.filter is not None
        else None
    )
    return values


def chunks(ids: Sequence[uuid.UUID], size: int = EVENT_CHUNK) -> Iterator[list[uuid.UUID]]:
    """``ids`` in slices of at most ``size`` (one membership event each)."""
    for start in range(0, len(ids), size):
        yield list(ids[start : start + size])


class MembershipRequest(BaseModel):
    """Members to add or remove: by id, or every organization a filter finds (add only)."""

    model_config = ConfigDict(extra="forbid")

    organization_ids: list[uuid.UUID] | None = Field(
        default=None, min_length=1, max_length=MAX_IDS_PER_REQUEST
    )
    filter: OrganizationFilter | None = None

    @model_validator(mode="after")
    def _one_way(self) -> Self:
        if (self.organization_ids is None) == (self.filter is None):
            raise PydanticCustomError("members", "give organization_ids or a filter")
        return self


class MembershipChange(BaseModel):
    """What a membership request did."""

    added: int = 0
    removed: int = 0
    unchanged: int = Field(default=0, description="already members (add) or not members (remove)")
    not_found: list[str] = Field(
        default_factory=list,
        description="ids or file rows that name no organization the caller may see",
    )


def wanted_members(
    rows: Iterable[list[str | None]], column: str | None, max_rows: int
) -> tuple[dict[str, list[int]], list[str]]:
    """The organizations an uploaded file's rows name (``inn`` or ``id:<uuid>`` -> row numbers)
    and the rows naming none; TabularError for a file that names no column to read."""
    rows = iter(rows)
    header = next(rows, None)
    if header is None:
        raise TabularError("the file is empty")
    overrides = {column: "inn"} if column else None
    mapping, problems = map_headers(header, {}, overrides)
    by_field = {field: index for index, field in mapping.items()}
    if problems or not ({"inn", "id"} & set(by_field)):
        raise TabularError(
            "; ".join(problems) or "no column of INN or id (name it «ИНН», «INN» or «id»)"
        )
    wanted: dict[str, list[int]] = {}
    not_found: list[str] = []
    for number, row in enumerate(rows, start=2):
        if number > max_rows + 1:
            raise TabularError(f"more than {max_rows} rows")
        key = member_key(row, by_field)
        if key is None:
            not_found.append(f"row {number}")
        else:
            wanted.setdefault(key, []).append(number)
    return wanted, not_found


def member_key(row: list[str | None], by_field: dict[str, int]) -> str | None:
    """What a row names: ``id:<uuid>`` or a valid INN (None for neither)."""

    def cell(field: str) -> str | None:
        index = by_field.get(field)
        return row[index] if index is not None and index < len(row) else None

    if (raw_id := cell("id")) is not None:
        try:
            return f"id:{uuid.UUID(raw_id)}"
        except ValueError:
            return None
    if (raw_inn := cell("inn")) is not None:
        try:
            return valid_inn(raw_inn.replace(" ", ""))
        except ValueError:
            return None
    return None
