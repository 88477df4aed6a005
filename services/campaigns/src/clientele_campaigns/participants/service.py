"""Participant operations: adding (by hand or in bulk, blocked counterparties refused and the
refusal recorded), status and outcome changes one by one or in bulk, stage moves with their
history; following what the directory does to organizations and persons."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.directory_read_models import OrganizationRecord, PersonRecord
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.campaigns import MAX_ADDED
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import NotFound, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import (
    AuditEntry,
    NewVersion,
    UnitOfWork,
    Versioned,
    audit_trail,
    write_version,
    write_versions,
)
from sqlalchemy import Select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns import publishing
from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.campaigns.rules import Campaign, Stage
from clientele_campaigns.clients.service import READ_MODELS
from clientele_campaigns.participants import queries
from clientele_campaigns.participants.rules import (
    OUTCOME_FIELDS,
    Addition,
    AdditionResult,
    BulkUpdate,
    Move,
    Participant,
    ParticipantPatch,
    ParticipantStatus,
    Refused,
    StageHistoryEntry,
    Who,
    changed_values,
    unique,
)
from clientele_campaigns.tables import audit_log, participants

KIND = "participant"
PARTICIPANT = Versioned(participants, KIND)
_NOT_FOUND = "The participant does not exist."


def _stage(campaign: Campaign, stage_id: uuid.UUID | None, field: str) -> Stage:
    if stage_id is None:
        return campaign.stages[0]
    stage = campaign.stage(stage_id)
    if stage is None:
        raise invalid_field(field, "not a stage of the marketing event", "unknown_reference")
    return stage


def _refusal(
    principal: Principal,
    entry: Who,
    organization: OrganizationRecord | None,
    person: PersonRecord | None,
) -> Refused | None:
    """Why an entry is not added, if it is not: unknown or unseen organization or person (the
    same answer: existence is not disclosed), or a blocked counterparty."""
    if (
        organization is None
        or organization.deleted
        or not principal.can_see(organization.directions)
    ):
        return Refused(organization_id=entry.organization_id, reason="unknown_organization")
    if entry.person_id is not None and (
        person is None or person.deleted or not principal.can_see(person.directions)
    ):
        return Refused(**entry.model_dump(), reason="unknown_person")
    if organization.blocked or (person is not None and person.blocked):
        return Refused(**entry.model_dump(), reason="blocked")
    return None


async def add_participants(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, addition: Addition
) -> AdditionResult:
    """Organizations and their persons into the event at a stage, all in one transaction;
    the refused ones returned and recorded (``GET .../refusals``)."""
    async with campaigns.work(runtime, principal) as uow:
        campaign = await campaigns.locked_campaign(uow, principal, campaign_id)
        return await add_to_event(
            uow,
            principal,
            campaign,
            stage_id=addition.stage_id,
            entries=addition.participants,
            status=addition.status,
        )


async def add_to_event(
    uow: UnitOfWork,
    principal: Principal,
    campaign: Campaign,
    *,
    stage_id: uuid.UUID | None,
    entries: list[Who],
    status: ParticipantStatus,
) -> AdditionResult:
    """Add ``entries`` to an event locked by the caller's unit of work: each organization and
    person known, live and visible to the caller, never a blocked one, never twice."""
    stage = _stage(campaign, stage_id, "stage_id")
    entries = unique(entries)
    organizations = await READ_MODELS.organizations_of(
        uow.session, [entry.organization_id for entry in entries]
    )
    persons = await READ_MODELS.persons_of(
        uow.session, [entry.person_id for entry in entries if entry.person_id]
    )
    refused: list[Refused] = []
    accepted: list[Who] = []
    for entry in entries:
        person = persons.get(entry.person_id) if entry.person_id else None
        reason = _refusal(principal, entry, organizations.get(entry.organization_id), person)
        if reason is None:
            accepted.append(entry)
        else:
            refused.append(reason)
    already = await queries.present(uow.session, campaign.id, accepted)
    refused += [Refused(**entry.model_dump(), reason="already_added") for entry in already]
    accepted = [entry for entry in accepted if entry not in already]
    await queries.record_refusals(uow.session, campaign.id, refused, principal.subject)
    now = datetime.now(UTC)
    added = [  # built from checked values: no validation again (a list may add 100,000)
        Participant.model_construct(
            id=uuid.uuid4(),
            campaign_id=campaign.id,
            stage_id=stage.id,
            organization_id=entry.organization_id,
            person_id=entry.person_id,
            status=status,
            version=1,
            created_at=now,
            updated_at=now,
        )
        for entry in accepted
    ]
    await _insert(uow, campaign, added)
    return AdditionResult(added=added, refused=refused)


async def add_many(
    uow: UnitOfWork,
    principal: Principal,
    campaign: Campaign,
    *,
    stage_id: uuid.UUID | None,
    source: Select[Any],
    status: ParticipantStatus,
) -> tuple[int, int, list[Refused]]:
    """Add the organizations ``source`` selects (a list's members: up to 100,000) to an event
    locked by the unit of work, with the rules of ``add_to_event`` checked in SQL and every row
    (participants, stage history, audit entries, refusals) written by INSERT ... SELECT; the
    candidates and their outcomes stay in ``addition_candidates`` until the commit. How many
    were added, how many refused, and the refused ones the caller may be told of."""
    stage = _stage(campaign, stage_id, "stage_id")
    await queries.classify_candidates(uow.session, principal, campaign.id, source)
    await queries.insert_candidates(
        uow.session, campaign.id, stage.id, status, uow.actor, uow.actor_name
    )
    count, batches, refusals, refused = await queries.candidate_outcomes(
        uow.session, principal, MAX_ADDED
    )
    uow.stage(*publishing.batches_added(uow.outbox, campaign, stage.id, status, batches, uow.actor))
    return count, refusals, refused


async def _insert(uow: UnitOfWork, campaign: Campaign, added: list[Participant]) -> None:
    """New participants, their first stage-history entries, audit entries and events."""
    if not added:
        return
    subject = uow.actor.subject
    await queries.insert_participants(
        uow.session,
        [
            {
                "id": p.id,
                "campaign_id": p.campaign_id,
                "stage_id": p.stage_id,
                "organization_id": p.organization_id,
                "person_id": p.person_id,
                "status": p.status,
                "version": 1,
                "created_by": subject,
                "updated_by": subject,
            }
            for p in added
        ],
    )
    await queries.record_moves(
        uow.session,
        [
            {
                "participant_id": p.id,
                "campaign_id": p.campaign_id,
                "to_stage_id": p.stage_id,
                "status": p.status,
                "actor_subject": subject,
            }
            for p in added
        ],
    )
    await uow.audit_many(
        kind=KIND,
        action="added",
        entries=[
            (
                p.id,
                1,
                {
                    "campaign_id": {"old": None, "new": str(p.campaign_id)},
                    "stage_id": {"old": None, "new": str(p.stage_id)},
                    "organization_id": {"old": None, "new": str(p.organization_id)},
                    "person_id": {"old": None, "new": _json(p.person_id)},
                    "status": {"old": None, "new": p.status},
                },
            )
            for p in added
        ],
    )
    uow.stage(*publishing.participants_added(uow.outbox, campaign, added, uow.actor))


async def _visible(
    session: AsyncSession, principal: Principal, campaign_id: uuid.UUID, participant_id: uuid.UUID
) -> tuple[Campaign, Participant]:
    campaign = await campaigns.visible_campaign(session, principal, campaign_id)
    participant = await queries.load(session, campaign_id, participant_id)
    if participant is None:
        raise NotFound(_NOT_FOUND)
    return campaign, participant


async def list_participants(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    stage_id: uuid.UUID | None,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Participant]:
    """A page of the event's participants in id order (``after``: the last id of the previous)."""
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        return await queries.list_live(
            session, campaign_id, stage_id=stage_id, status=status, after=after, limit=limit
        )


async def get_participant(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
) -> Participant:
    async with runtime.sessions() as session:
        return (await _visible(session, principal, campaign_id, participant_id))[1]


async def participant_history(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
) -> list[StageHistoryEntry]:
    """Every stage the participant entered, in order."""
    async with runtime.sessions() as session:
        await _visible(session, principal, campaign_id, participant_id)
        return await queries.history(session, participant_id)


async def participant_audit(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
    after: int,
    limit: int,
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await _visible(session, principal, campaign_id, participant_id)
        return await audit_trail(session, audit_log, KIND, participant_id, after=after, limit=limit)


async def refusals(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, limit: int
) -> list[Refused]:
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        return await queries.refused(session, principal, campaign_id, limit)


def _next(
    uow: UnitOfWork, campaign: Campaign, current: Participant, values: dict[str, Any]
) -> tuple[Participant, dict[str, Any], list[Envelope]]:
    """A participant after ``values``: the record, the audit entry's changes (of the fields
    that differ) and the events of attendance (status) and outcome."""
    changes = {
        name: {"old": _json(getattr(current, name)), "new": _json(value)}
        for name, value in values.items()
        if getattr(current, name) != value
    }
    after = current.model_copy(update={**values, "version": current.version + 1})
    events: list[Envelope] = []
    if "status" in changes:
        events.append(
            publishing.participant_status_changed(
                uow.outbox, campaign, after, current.status, datetime.now(UTC), uow.actor
            )
        )
    if set(OUTCOME_FIELDS) & changes.keys():
        events.append(publishing.participant_outcome(uow.outbox, campaign, after, uow.actor))
    return after, changes, events


async def _change(
    uow: UnitOfWork,
    campaign: Campaign,
    current: Participant,
    values: dict[str, Any],
    *,
    expected: set[int],
    action: str,
) -> Participant:
    """A participant's next version: audit entry and events."""
    after, changes, events = _next(uow, campaign, current, values)
    await write_version(
        uow,
        PARTICIPANT,
        current.id,
        current=current.version,
        expected=expected,
        values=values,
        action=action,
        changes=changes,
        events=events,
    )
    return after


async def _change_many(
    uow: UnitOfWork,
    campaign: Campaign,
    found: list[Participant],
    values: dict[str, Any],
    *,
    action: str,
) -> list[Participant]:
    """The same ``values`` for the locked participants they change, in one batch; the
    unchanged ones are left as they are."""
    changed: list[Participant] = []
    versions: list[NewVersion] = []
    events: list[Envelope] = []
    for current in found:
        after, changes, staged = _next(uow, campaign, current, values)
        if changes:
            changed.append(after)
            versions.append(NewVersion(current.id, current.version, changes))
            events += staged
    await write_versions(uow, PARTICIPANT, versions, values=values, action=action, events=events)
    return changed


def _json(value: Any) -> Any:
    return str(value) if isinstance(value, uuid.UUID) else value


async def update_participant(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    participant_id: uuid.UUID,
    patch: ParticipantPatch,
    expected: set[int],
) -> Participant:
    """Status and/or outcome of one participant (If-Match of the participant)."""
    async with campaigns.work(runtime, principal) as uow:
        campaign = await campaigns.locked_campaign(uow, principal, campaign_id)
        found = await queries.locked(uow.session, campaign_id, [participant_id])
        if not found:
            raise NotFound(_NOT_FOUND)
        current = found[0]
        values = changed_values(current, patch)
        if not values:
            check_version(expected, current.version)
            return current
        return await _change(uow, campaign, current, values, expected=expected, action="updated")


async def _locked_all(
    uow: UnitOfWork, campaign_id: uuid.UUID, ids: list[uuid.UUID]
) -> list[Participant]:
    """Every named participant of the event, locked (422 naming those that are not)."""
    found = await queries.locked(uow.session, campaign_id, ids)
    missing = sorted({str(i) for i in ids} - {str(p.id) for p in found})
    if missing:
        shown = ", ".join(missing[:20]) + (" ..." if len(missing) > 20 else "")
        raise invalid_field(
            "participant_ids", f"not participants of the event: {shown}", "unknown_reference"
        )
    return found


async def bulk_update(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, update: BulkUpdate
) -> list[Participant]:
    """The same status and/or outcome for many participants, all or none; each changed one gets
    its version, audit entry and events (unchanged ones are left as they are)."""
    async with campaigns.work(runtime, principal) as uow:
        campaign = await campaigns.locked_campaign(uow, principal, campaign_id)
        found = await _locked_all(uow, campaign_id, update.participant_ids)
        values = update.model_dump(include=update.model_fields_set - {"participant_ids"})
        return await _change_many(uow, campaign, found, values, action="bulk_updated")


async def move_participants(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, move: Move
) -> list[Participant]:
    """Participants to another stage of the event; each keeps its stage history."""
    async with campaigns.work(runtime, principal) as uow:
        campaign = await campaigns.locked_campaign(uow, principal, campaign_id)
        stage = _stage(campaign, move.to_stage_id, "to_stage_id")
        found = await _locked_all(uow, campaign_id, move.participant_ids)
        moved = await _change_many(uow, campaign, found, {"stage_id": stage.id}, action="moved")
        await queries.record_moves(
            uow.session,
            [
                {
                    "participant_id": after.id,
                    "campaign_id": campaign_id,
                    "from_stage_id": before.stage_id,
                    "to_stage_id": stage.id,
                    "status": before.status,
                    "actor_subject": uow.actor.subject,
                }
                for before, after in _pairs(found, moved)
            ],
        )
        return moved


def _pairs(
    found: list[Participant], changed: list[Participant]
) -> list[tuple[Participant, Participant]]:
    """Each changed participant with how it was before."""
    before = {participant.id: participant for participant in found}
    return [(before[after.id], after) for after in changed]


async def participant_of(
    session: AsyncSession, campaign_id: uuid.UUID, who: Who
) -> Participant | None:
    return await queries.find(session, campaign_id, who)


async def set_status(
    uow: UnitOfWork, campaign: Campaign, participant_id: uuid.UUID, status: ParticipantStatus
) -> Participant | None:
    """One participant's status in a unit of work holding the event (None: not a live one)."""
    found = await queries.locked(uow.session, campaign.id, [participant_id])
    if not found or found[0].status == status:
        return found[0] if found else None
    current = found[0]
    return await _change(
        uow, campaign, current, {"status": status}, expected={current.version}, action="updated"
    )


# --- following the directory ------------------------------------------------------------------


async def _refresh_flags(session: AsyncSession, found: list[Participant]) -> None:
    """Hidden while its organization or person is deleted in the directory, flagged while
    either is blocked; both follow the read models."""
    organizations = await READ_MODELS.organizations_of(session, {p.organization_id for p in found})
    persons = await READ_MODELS.persons_of(session, {p.person_id for p in found if p.person_id})
    flags = []
    for p in found:
        organization = organizations.get(p.organization_id)
        person = persons.get(p.person_id) if p.person_id else None
        flags.append(
            {
                "pid": p.id,
                "hidden": bool(organization and organization.deleted)
                or bool(person and person.deleted),
                "blocked": bool(organization and organization.blocked)
                or bool(person and person.blocked),
            }
        )
    await queries.set_flags(session, flags)


async def follow_organization(
    uow: UnitOfWork, before: OrganizationRecord | None, after: OrganizationRecord
) -> None:
    """A merged organization's participants move to the survivor (a new version and audit entry
    each; one already there stays hidden with the merged record); deleted ones are hidden until
    restored; blocked ones flagged."""
    survivor = after.merged_into
    found = await queries.of_client(uow.session, organization_id=after.organization_id)
    if survivor is not None and (before is None or before.merged_into != survivor):
        note = f"the directory merged {after.organization_id} into {survivor}"
        for current in found:
            who = Who(organization_id=survivor, person_id=current.person_id)
            if await queries.present(uow.session, current.campaign_id, [who]):
                continue
            await write_version(
                uow,
                PARTICIPANT,
                current.id,
                current=current.version,
                expected={current.version},
                values={"organization_id": survivor},
                action="client_merged",
                changes={
                    "organization_id": {"old": str(current.organization_id), "new": str(survivor)}
                },
                note=note,
            )
        found = await queries.of_client(
            uow.session, organization_id=survivor
        ) + await queries.of_client(uow.session, organization_id=after.organization_id)
    await _refresh_flags(uow.session, found)


async def follow_person(uow: UnitOfWork, before: PersonRecord | None, after: PersonRecord) -> None:
    """The same for persons: a merged person's participations move to the survivor."""
    survivor = after.merged_into
    found = await queries.of_client(uow.session, person_id=after.person_id)
    if survivor is not None and (before is None or before.merged_into != survivor):
        for current in found:
            who = Who(organization_id=current.organization_id, person_id=survivor)
            if await queries.present(uow.session, current.campaign_id, [who]):
                continue
            await write_version(
                uow,
                PARTICIPANT,
                current.id,
                current=current.version,
                expected={current.version},
                values={"person_id": survivor},
                action="client_merged",
                changes={"person_id": {"old": str(current.person_id), "new": str(survivor)}},
                note=f"the directory merged {after.person_id} into {survivor}",
            )
        found = await queries.of_client(uow.session, person_id=survivor) + await queries.of_client(
            uow.session, person_id=after.person_id
        )
    await _refresh_flags(uow.session, found)


async def at_stage(
    session: AsyncSession, campaign_id: uuid.UUID, stage_id: uuid.UUID
) -> list[Participant]:
    """Every live participant of an event at a stage (a mailing's audience)."""
    return await queries.list_live(
        session, campaign_id, stage_id=stage_id, status=None, after=None, limit=10_000_000
    )
