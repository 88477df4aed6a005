"""Operations on the kinds catalogue: everybody signed in reads, administrators write (each
change audited), and the check every write of a marketing event makes of its kind."""

from __future__ import annotations

from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import AuditEntry, audit_trail, field_changes, unit_of_work
from sqlalchemy import func
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns.kinds import queries
from clientele_campaigns.kinds.rules import EventKind, KindDraft, KindPatch, kind_audit_id
from clientele_campaigns.tables import audit_log

KIND = "event_kind"
_NOT_FOUND = "No such kind of marketing event."


async def _kind(session: AsyncSession, code: str, *, lock: bool = False) -> EventKind:
    kind = await queries.load(session, code, lock=lock)
    if kind is None:
        raise NotFound(_NOT_FOUND)
    return kind


async def usable_kind(session: AsyncSession, code: str) -> EventKind:
    """The kind a marketing event is written with: known and not archived (422 on ``kind``
    otherwise); it stays so until the transaction ends."""
    kind = await queries.usable(session, code)
    if kind is None:
        raise invalid_field("kind", f"no kind of event {code!r}", "unknown_reference")
    if kind.archived:
        raise invalid_field("kind", f"the kind {code!r} is archived", "archived_reference")
    return kind


async def list_kinds(*, runtime: ServiceRuntime, include_archived: bool) -> list[EventKind]:
    async with runtime.sessions() as session:
        return await queries.listed(session, include_archived=include_archived)


async def get_kind(*, runtime: ServiceRuntime, code: str) -> EventKind:
    async with runtime.sessions() as session:
        return await _kind(session, code)


async def kind_audit(
    *, runtime: ServiceRuntime, code: str, after: int, limit: int
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await _kind(session, code)
        return await audit_trail(
            session, audit_log, KIND, kind_audit_id(code), after=after, limit=limit
        )


async def create_kind(
    *, runtime: ServiceRuntime, principal: Principal, draft: KindDraft
) -> EventKind:
    """A new kind (409 when its code exists, archived or not)."""
    async with unit_of_work(runtime.sessions, runtime.outbox, audit_log, principal) as uow:
        try:
            async with uow.session.begin_nested():
                kind = await queries.insert_kind(
                    uow.session,
                    {
                        **draft.model_dump(),
                        "version": 1,
                        "created_by": principal.subject,
                        "updated_by": principal.subject,
                    },
                )
        except IntegrityError:
            raise Conflict(f"The kind {draft.code!r} exists.") from None
        await uow.audit(
            kind=KIND,
            entity_id=kind_audit_id(kind.code),
            action="created",
            version=1,
            changes={
                name: {"old": None, "new": value} for name, value in draft.model_dump().items()
            },
        )
    return kind


async def update_kind(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    code: str,
    patch: KindPatch,
    expected: set[int],
) -> EventKind:
    """Rename or archive a kind (no change: no version)."""
    async with unit_of_work(runtime.sessions, runtime.outbox, audit_log, principal) as uow:
        current = await _kind(uow.session, code, lock=True)
        check_version(expected, current.version)
        given = patch.model_dump(exclude_unset=True)
        changes = field_changes(current.model_dump(include=set(given)), given)
        if not changes:
            return current
        kind = await queries.update_kind(
            uow.session,
            code,
            {
                **given,
                "version": current.version + 1,
                "updated_by": principal.subject,
                "updated_at": func.now(),
            },
        )
        await uow.audit(
            kind=KIND,
            entity_id=kind_audit_id(code),
            action="updated",
            version=kind.version,
            changes=changes,
        )
    return kind
