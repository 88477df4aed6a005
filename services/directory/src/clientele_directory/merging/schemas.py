"""What a merge is asked and answers."""

from __future__ import annotations

import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from clientele_directory.organizations.rules import Organization
from clientele_directory.persons.rules import Person


class MergeRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    other_id: uuid.UUID = Field(description="the record merged into this one (deleted)")
    other_version: int = Field(description="the version (ETag) of the other as you read it")
    take: list[str] = Field(
        default_factory=list,
        description="fields whose value comes from the other; `attributes` takes all its custom "
        "attribute values, `attributes.<key>` one of them",
    )
    values: dict[str, Any] = Field(
        default_factory=dict,
        description="fields set explicitly (win over both records); `attributes` is a merge "
        "patch of custom attribute values",
    )


class MergeResult(BaseModel):
    survivor: Organization
    merged_id: uuid.UUID
    employments_moved: int
    list_memberships_moved: int
    register_entries_moved: int
    references_moved: int


class PersonMergeResult(BaseModel):
    survivor: Person
    merged_id: uuid.UUID
    employments_moved: int
    employments_folded: int
    register_entries_moved: int
    references_moved: int
