"""What every directory endpoint shares: preconditions, audit rows, validation problems."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Annotated, Any

from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Actor
from clientele_shared.http.problems import ProblemError
from clientele_shared.observability import current_correlation_id
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import Depends, Header
from fastapi.exceptions import RequestValidationError
from sqlalchemy import insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.domain.common import AuditEntry, etag, versions_in_if_match
from clientele_directory.store import audit_log

Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The ETag of the version the change was made from, e.g. W/"3" (required).',
    ),
]


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


class Conflict(ProblemError):
    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(409, "Conflict", detail, kind="conflict", **extensions)


def required_versions(if_match: str | None) -> set[int]:
    """The versions If-Match names; 428 when the header is missing."""
    if if_match is None or not if_match.strip():
        raise PreconditionRequired()
    return versions_in_if_match(if_match)


def check_version(wanted: set[int], current: int) -> None:
    """412 unless the caller's If-Match names the current version."""
    if current not in wanted:
        raise PreconditionFailed(current)


def invalid(errors: Sequence[Any], location: str = "body") -> RequestValidationError:
    """A 422 validation problem (same shape as FastAPI's) for errors found after parsing."""
    return RequestValidationError(
        [{**error, "loc": (location, *error.get("loc", ()))} for error in errors]
    )


def invalid_field(
    field: str, message: str, kind: str = "value_error", *, location: str = "body"
) -> RequestValidationError:
    return invalid([{"loc": (field,), "msg": message, "type": kind}], location)


def actor_of(principal: Principal) -> Actor:
    return Actor(subject=principal.subject, kind=principal.kind)


async def audit(
    session: AsyncSession,
    principal: Principal,
    *,
    kind: str,
    entity_id: uuid.UUID,
    action: str,
    version: int | None,
    changes: dict[str, Any] | None = None,
    note: str | None = None,
) -> None:
    """Append one row to the audit trail, in the caller's transaction."""
    await session.execute(
        insert(audit_log).values(
            entity_kind=kind,
            entity_id=entity_id,
            version=version,
            action=action,
            actor_subject=principal.subject,
            actor_kind=principal.kind,
            actor_name=principal.name,
            correlation_id=current_correlation_id(),
            changes=changes or {},
            note=note,
        )
    )


async def audit_trail(
    session: AsyncSession, kind: str, entity_id: uuid.UUID, *, after: int, limit: int
) -> list[AuditEntry]:
    """A record's audit entries in the order they happened, after the entry id ``after``."""
    rows = (
        await session.execute(
            select(audit_log)
            .where(
                audit_log.c.entity_kind == kind,
                audit_log.c.entity_id == entity_id,
                audit_log.c.id > after,
            )
            .order_by(audit_log.c.id)
            .limit(limit)
        )
    ).all()
    return [AuditEntry.model_validate(row, from_attributes=True) for row in rows]
