"""The directory's unit of work: one per business operation (``clientele_shared.service_layer``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from clientele_shared.auth.principal import Principal
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork, actor_of, unit_of_work, within
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.tables import audit_log


def work(runtime: ServiceRuntime, principal: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
    """A transaction on behalf of ``principal``: its rows, audit entries and outbox events."""
    return unit_of_work(runtime.sessions, runtime.outbox, audit_log, principal)


def legacy_work(
    session: AsyncSession, runtime: ServiceRuntime, principal: Principal
) -> AbstractAsyncContextManager[UnitOfWork]:
    """A unit of work in a transaction the caller owns (the import job's batches): its events
    are staged when the block ends, the caller commits."""
    return within(session, runtime.outbox, audit_log, actor_of(principal), principal.name)
