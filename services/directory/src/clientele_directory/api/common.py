"""What the directory's older endpoints still share: one-statement reads, the audit helpers
(until every feature writes through ``clientele_shared.service_layer``)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.observability import current_correlation_id
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import AuditEntry, UnitOfWork, actor_of
from clientele_shared.service_layer import audit_trail as shared_audit_trail
from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.tables import audit_log


@asynccontextmanager
async def statement_session(runtime: ServiceRuntime) -> AsyncIterator[AsyncSession]:
    """A session for a read that is one statement: its connection is in autocommit mode, so
    there is no BEGIN and no ROLLBACK round trip (a statement sees one snapshot on its own).
    Not for anything that writes or reads twice."""
    async with runtime.engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        async with AsyncSession(bind=connection) as session:
            yield session


@asynccontextmanager
async def legacy_work(
    session: AsyncSession, runtime: ServiceRuntime, principal: Principal
) -> AsyncIterator[UnitOfWork]:
    """A unit of work in a transaction an older endpoint owns (its events staged at the end)."""
    uow = UnitOfWork(session, runtime.outbox, audit_log, actor_of(principal), principal.name)
    yield uow
    await runtime.outbox.add_many(session, uow.events)


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
    return await shared_audit_trail(session, audit_log, kind, entity_id, after=after, limit=limit)


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
