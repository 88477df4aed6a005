"""Public registration (rate-limited per client address, a honeypot for bots) matched to a
known organization by INN and added as a participant, or kept for review; check-in with the
ticket code marks attendance."""

from __future__ import annotations

import uuid

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import Conflict, NotFound
from clientele_shared.http.ratelimit import TooManyRequests, count_in_window
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns import publishing
from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.contacts.rules import phone_key
from clientele_campaigns.participants import service as participants
from clientele_campaigns.participants.rules import Who
from clientele_campaigns.registration import queries
from clientele_campaigns.registration.rules import (
    Registration,
    RegistrationForm,
    Ticket,
    client_key,
    code_hash,
    new_code,
)
from clientele_campaigns.settings import CampaignsSettings

log = get_logger(__name__)
KIND = "registration"
REGISTRAR = Principal(subject="public-registration", kind="service", service="campaigns")
"""Who adds a matched registrant: the service itself (the registrant has no account)."""
_CLOSED = "The event does not exist or does not take registrations."


async def _count(runtime: ServiceRuntime, campaign_id: uuid.UUID, host: str) -> None:
    """429 beyond the limit per address and event; without Redis the form stays open (logged)."""
    settings = runtime.settings
    assert isinstance(settings, CampaignsSettings)
    try:
        count, ttl = await count_in_window(runtime.redis, client_key(campaign_id, host), 60)
    except RedisError as exc:
        log.warning("registration rate limiter unavailable, not limiting", error=repr(exc))
        return
    if count > settings.registrations_per_minute:
        raise TooManyRequests(ttl, "Too many registrations from this address; try again later.")


async def register(
    *, runtime: ServiceRuntime, campaign_id: uuid.UUID, form: RegistrationForm, host: str
) -> tuple[Ticket, bool]:
    """A registration with its ticket code and its confirmation e-mail, and whether it is new:
    the same address registering again to the same event gets its registration back without a
    code and without another e-mail (the code is only in the first answer and that e-mail). A
    filled honeypot gets the answer of a new one and nothing is written."""
    await _count(runtime, campaign_id, host)
    code = new_code()
    if form.website:
        log.info("registration honeypot filled", campaign_id=str(campaign_id))
        return Ticket(registration_id=uuid.uuid4(), status="review", code=code), True
    async with campaigns.work(runtime, REGISTRAR) as uow:
        try:  # an unknown event answers as a closed one: the form tells nothing of which
            campaign = await campaigns.visible_campaign(
                uow.session, REGISTRAR, campaign_id, lock=True
            )
        except NotFound:
            raise NotFound(_CLOSED) from None
        if not campaign.registration_open:
            raise NotFound(_CLOSED)
        known = await queries.by_email(uow.session, campaign_id, form.email)
        if known is not None:  # the event's row is locked: one registration per address
            return Ticket(registration_id=known.id, status=known.status, code=None), False
        organization_id = (
            await queries.organization_by_inn(uow.session, form.inn) if form.inn else None
        )
        person_id, organization_id, employed = await _known_person(
            uow.session, form, organization_id
        )
        participant_id = None
        if organization_id is not None:
            who = Who(organization_id=organization_id, person_id=person_id if employed else None)
            result = await participants.add_to_event(
                uow, REGISTRAR, campaign, stage_id=None, entries=[who], status="registered"
            )
            if result.added:
                participant_id = result.added[0].id
            elif result.refused[0].reason == "already_added":
                found = await participants.participant_of(uow.session, campaign_id, who)
                participant_id = found.id if found else None
        registration = await queries.insert_registration(
            uow.session,
            {
                **form.model_dump(exclude={"website", "phone"}),
                "phone": phone_key(form.phone),
                "person_id": person_id,
                "id": uuid.uuid4(),
                "campaign_id": campaign_id,
                "code_hash": code_hash(code),
                "status": "registered" if participant_id else "review",
                "organization_id": organization_id,
                "participant_id": participant_id,
            },
        )
        await uow.audit(
            kind=KIND,
            entity_id=registration.id,
            action="registered",
            version=None,
            changes={"status": {"old": None, "new": registration.status}},
        )
        uow.stage(
            publishing.registration_confirmation(
                uow.outbox, campaign, registration, code, uow.actor
            )
        )
    return Ticket(registration_id=registration.id, status=registration.status, code=code), True


async def _known_person(
    session: AsyncSession, form: RegistrationForm, organization_id: uuid.UUID | None
) -> tuple[uuid.UUID | None, uuid.UUID | None, bool]:
    """The one known person with the registrant's e-mail or phone (none when no one or several
    match), the organization (the INN's, else the person's only one), and whether the person
    works there (then the participant names them)."""
    keys = [f"email:{form.email.strip().lower()}"]
    phone = phone_key(form.phone)
    if phone is not None:
        keys.append(f"phone:{phone}")
    found = await queries.persons_by_contact(session, keys)
    if len(found) != 1:
        return None, organization_id, False
    person_id, organizations = found[0]
    if organization_id is None and len(organizations) == 1:
        organization_id = organizations[0]
    return person_id, organization_id, organization_id in organizations


async def list_registrations(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    campaign_id: uuid.UUID,
    status: str | None,
    limit: int,
) -> list[Registration]:
    async with runtime.sessions() as session:
        await campaigns.visible_campaign(session, principal, campaign_id)
        return await queries.listed(session, campaign_id, status, limit)


async def check_in(
    *, runtime: ServiceRuntime, principal: Principal, campaign_id: uuid.UUID, code: str
) -> Registration:
    """Mark the ticket's holder present (404 unknown code, 409 used); a matched registrant's
    participant becomes ``attended`` (its version, audit entry and attendance event)."""
    async with campaigns.work(runtime, principal) as uow:
        campaign = await campaigns.locked_campaign(uow, principal, campaign_id)
        registration = await queries.by_code(uow.session, campaign_id, code_hash(code))
        if registration is None:
            raise NotFound("No such ticket for this event.")
        if registration.checked_in_at is not None:
            raise Conflict("The ticket was already used.", kind="ticket-used")
        checked = await queries.check_in(uow.session, registration.id, principal.subject)
        await uow.audit(
            kind=KIND,
            entity_id=registration.id,
            action="checked_in",
            version=None,
            changes={"checked_in_at": {"old": None, "new": checked.checked_in_at.isoformat()}}
            if checked.checked_in_at
            else {},
        )
        if registration.participant_id is not None:
            await participants.set_status(uow, campaign, registration.participant_id, "attended")
    return checked
