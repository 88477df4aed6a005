"""The directory's unit of work: one per business operation (``clientele_shared.service_layer``)."""

from __future__ import annotations

from contextlib import AbstractAsyncContextManager

from clientele_shared.auth.principal import Principal
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork, unit_of_work

from clientele_directory.tables import audit_log


def work(runtime: ServiceRuntime, principal: Principal) -> AbstractAsyncContextManager[UnitOfWork]:
    """A transaction on behalf of ``principal``: its rows, audit entries and outbox events."""
    return unit_of_work(runtime.sessions, runtime.outbox, audit_log, principal)
