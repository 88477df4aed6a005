"""What every directory endpoint shares: preconditions, audit rows, validation problems."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Annotated, Any

from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Actor
from clientele_shared.http.problems import ProblemError
from clientele_shared.observability import current_correlation_id
from clientele_shared.runtime import ServiceRuntime, runtime_of
from fastapi import Depends
from fastapi.exceptions import RequestValidationError
from sqlalchemy import func, insert, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.domain.common import AuditEntry
from clientele_directory.store import audit_log

Runtime = Annotated[ServiceRuntime, Depends(runtime_of)]


@asynccontextmanager
async def statement_session(runtime: ServiceRuntime) -> AsyncIterator[AsyncSession]:
    """A session for a read that is one statement: its connection is in autocommit mode, so
    there is no BEGIN and no ROLLBACK round trip (a statement sees one snapshot on its own).
    Not for anything that writes or reads twice."""
    async with runtime.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=connection) as session:
            yield session


class Conflict(ProblemError):
    def __init__(self, detail: str, **extensions: Any) -> None:
        super().__init__(409, "Conflict", detail, kind="conflict", **extensions)


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


def soft_delete_values(
    principal: Principal, version: int, *, delete: bool = True
) -> dict[str, Any]:
    """The columns a soft delete (or, with ``delete=False``, a restore) sets on a versioned row."""
    return {
        "version": version,
        "deleted_at": func.now() if delete else None,
        "deleted_by": principal.subject if delete else None,
        "updated_at": func.now(),
        "updated_by": principal.subject,
    }
