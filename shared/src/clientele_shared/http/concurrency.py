"""Optimistic concurrency over HTTP: weak ETags of record versions, If-Match, 428 and 412."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Header

from clientele_shared.http.problems import ProblemError

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The ETag of the version the change was made from, e.g. W/"3" (required).',
    ),
]

_TAG = re.compile(r'^\s*(?:W/)?"(\d{1,18})"\s*$')


def etag(version: int) -> str:
    """The weak entity tag of a record version."""
    return f'W/"{version}"'


def versions_in_if_match(header: str) -> set[int]:
    """The record versions an ``If-Match`` header names (``W/"3"``, ``"3"``, comma lists).

    ``*`` and unparseable tags name no version: such a precondition never holds, since an update
    must say which version it was made from.
    """
    return {int(match.group(1)) for part in header.split(",") if (match := _TAG.match(part))}


class PreconditionRequired(ProblemError):
    def __init__(self) -> None:
        super().__init__(
            428,
            "Precondition Required",
            'Send If-Match with the ETag of the version you read (e.g. W/"3").',
            kind="precondition-required",
        )


class PreconditionFailed(ProblemError):
    def __init__(self, current_version: int) -> None:
        super().__init__(
            412,
            "Precondition Failed",
            "The record was changed since you read it; read it again and retry.",
            kind="precondition-failed",
            headers={"ETag": etag(current_version)},
            current_version=current_version,
        )


def required_versions(if_match: str | None) -> set[int]:
    """The versions If-Match names; 428 when the header is missing."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired()
    return versions_in_if_match(if_match)


def check_version(wanted: set[int], current: int) -> None:
    """412 unless the caller's If-Match names the current version."""
    if current not in wanted:
        raise PreconditionFailed(current)
