"""The read models' operations (``clientele_shared.directory_read_models``) over the pipeline's
tables: fold a directory event into whole records and apply them; look clients, persons and
employees up for the deals; move a merged client's deals and tasks to its survivor."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import Any, Protocol, Self, TypeVar

from clientele_shared.directory_read_models import DirectoryReadModels, OrganizationRecord
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.service_layer import UnitOfWork, Versioned, write_version
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline.tables import directory

READ_MODELS = DirectoryReadModels(directory)
organization = READ_MODELS.organization
persons_of = READ_MODELS.persons_of
employee = READ_MODELS.employee
references = READ_MODELS.references
apply_organization = READ_MODELS.apply_organization
apply_person = READ_MODELS.apply_person
apply_employee = READ_MODELS.apply_employee
organization_records = READ_MODELS.organization_records
person_records = READ_MODELS.person_records
employee_records = READ_MODELS.employee_records


class _OfClient(Protocol):
    """A record of a client's (a deal, a task)."""

    @property
    def organization_id(self) -> uuid.UUID | None: ...
    @property
    def version(self) -> int: ...
    def model_copy(
        self, *, update: Mapping[str, Any] | None = None, deep: bool = False
    ) -> Self: ...


OfClient = TypeVar("OfClient", bound=_OfClient)


async def move_to_survivor(
    uow: UnitOfWork,
    before: OrganizationRecord | None,
    after: OrganizationRecord,
    record: Versioned,
    ids_of: Callable[[AsyncSession, uuid.UUID], Awaitable[Iterable[uuid.UUID]]],
    reload: Callable[[AsyncSession, uuid.UUID], Awaitable[OfClient]],
    changed: Callable[[Outbox, OfClient, dict[str, dict[str, Any]], Actor], Envelope],
) -> bool:
    """If the directory has just merged the client (``before`` → ``after``), move its records
    (``ids_of``: locked) to the survivor: a new version, an audit entry ``client_merged`` and a
    ``changed`` event each. Whether it had (a redelivered merge moves nothing)."""
    survivor = after.merged_into
    if survivor is None or (before is not None and before.merged_into == survivor):
        return False
    for entity_id in await ids_of(uow.session, after.organization_id):
        current = await reload(uow.session, entity_id)
        changes = {"organization_id": {"old": str(current.organization_id), "new": str(survivor)}}
        moved = current.model_copy(
            update={"organization_id": survivor, "version": current.version + 1}
        )
        await write_version(
            uow,
            record,
            entity_id,
            current=current.version,
            expected={current.version},
            values={"organization_id": survivor},
            action="client_merged",
            changes=changes,
            note=f"the directory merged {after.organization_id} into {survivor}",
            events=[changed(uow.outbox, moved, changes, uow.actor)],
        )
    return True
