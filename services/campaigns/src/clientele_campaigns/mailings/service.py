"""Mailing operations: create and change a mailing, validate and preview it, start, pause,
resume and cancel it; the worker's steps (prepare a due mailing, hand a batch of recipients to
the notifier) and the delivery results coming back. ADR 38."""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import uuid
from collections.abc import AsyncIterator, Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

from clientele_shared.auth.access import ensure_visible, writable_directions
from clientele_shared.auth.principal import Principal
from clientele_shared.directory_read_models import OrganizationRecord, PersonRecord
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.http.problems import (
    Conflict,
    NotFound,
    ProblemError,
    invalid,
    invalid_field,
)
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork, Versioned, unit_of_work, write_version
from clientele_shared.storage import AttachmentStorage, BlobMissing, single
from clientele_shared.templating import (
    MessageTemplate,
    RenderedMessage,
    TemplateInvalid,
    try_render,
)
from clientele_shared.worker_processes import end_with_parent
from fastapi import UploadFile
from pydantic import ValidationError
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_campaigns import publishing
from clientele_campaigns.campaigns import service as campaigns
from clientele_campaigns.clients.service import READ_MODELS
from clientele_campaigns.consent import service as consent
from clientele_campaigns.contacts import queries as contacts_queries
from clientele_campaigns.contacts.rules import Contact, Premises
from clientele_campaigns.lists import service as lists
from clientele_campaigns.mailings import queries
from clientele_campaigns.mailings.postal import (
    FaxJob,
    Letter,
    LetterheadInvalid,
    PostalAddress,
    PrintJob,
    Sender,
    fax_documents,
    letterhead_size,
    postal_address,
    print_job,
)
from clientele_campaigns.mailings.rules import (
    EDITABLE_STATUSES,
    Candidate,
    FaxResult,
    GreetingDayAudience,
    Letterhead,
    ListAudience,
    Mailing,
    MailingDraft,
    MailingPatch,
    OrganizationsAudience,
    Preview,
    Recipient,
    Resolved,
    StageAudience,
    TokenPurpose,
    Validation,
    candidates_at,
    classify,
    next_issue,
    read_unsubscribe_token,
    status_allowed,
    unsubscribe_token,
)
from clientele_campaigns.participants import service as participants
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.tables import audit_log, mailings
from clientele_campaigns.templates import service as templates
from clientele_campaigns.templates.rules import compile_parts, context, problems_of

T = TypeVar("T")

Outcome = tuple[uuid.UUID, str, str | None, str | None]
"""A recipient's outcome row: (person, status, reason, detail)."""

KIND = "mailing"
MAILING = Versioned(mailings, KIND)
WORKER = Actor(subject="campaigns-mailer", kind="service")
EMAIL = "email"
MAX_EXCLUSIONS_SHOWN = 1000
_NOT_FOUND = "The mailing does not exist."
_PLACEHOLDER_URL = "https://unsubscribe.invalid/"


def _template(mailing: Mailing | MailingDraft) -> MessageTemplate:
    parts = mailing.parts
    try:
        return compile_parts(parts)
    except TemplateInvalid as problems:
        raise invalid(problems_of(problems)) from None


async def _visible(
    session: AsyncSession, principal: Principal, mailing_id: uuid.UUID, *, lock: bool = False
) -> Mailing:
    mailing = await queries.load(session, mailing_id, lock=lock, with_totals=not lock)
    if mailing is None:
        raise NotFound(_NOT_FOUND)
    ensure_visible(principal, mailing.directions, _NOT_FOUND)
    return mailing


async def _locked(uow: UnitOfWork, principal: Principal, mailing_id: uuid.UUID) -> Mailing:
    mailing = await _visible(uow.session, principal, mailing_id, lock=True)
    writable_directions(principal, mailing.directions)
    return mailing


async def _check_audience(
    session: AsyncSession, principal: Principal, draft: MailingDraft | Mailing
) -> None:
    """The audience's and the event's references exist and the caller sees them (422)."""
    if draft.campaign_id is not None:
        try:
            await campaigns.visible_campaign(session, principal, draft.campaign_id)
        except NotFound:
            raise invalid_field("campaign_id", "no such event", "unknown_reference") from None
    audience = draft.audience
    if isinstance(audience, ListAudience):
        await lists.referenced_kind(session, principal, audience.list_id, "audience.list_id")
    elif isinstance(audience, StageAudience):
        try:
            event = await campaigns.visible_campaign(session, principal, audience.campaign_id)
        except NotFound:
            raise invalid_field(
                "audience.campaign_id", "no such event", "unknown_reference"
            ) from None
        if event.stage(audience.stage_id) is None:
            raise invalid_field("audience.stage_id", "no such stage", "unknown_reference")


def _values(draft: MailingDraft) -> dict[str, Any]:
    return {
        "title": draft.title,
        "campaign_id": draft.campaign_id,
        "subject": draft.parts.subject,
        "html": draft.parts.html,
        "text": draft.parts.text,
        "attachments": [a.model_dump(mode="json") for a in draft.attachments],
        "reply_to": draft.reply_to,
        "audience": draft.audience.model_dump(mode="json"),
        "scheduled_at": draft.scheduled_at,
        "recurrence": None
        if draft.recurrence is None
        else draft.recurrence.model_dump(mode="json"),
        "post": None if draft.post is None else draft.post.model_dump(mode="json"),
    }


async def create(*, runtime: ServiceRuntime, principal: Principal, draft: MailingDraft) -> Mailing:
    """A draft; made from a stored template, it copies its newest version (and names it)."""
    writable_directions(principal, draft.directions)
    mailing_id = uuid.uuid4()
    async with campaigns.work(runtime, principal) as uow:
        made_from: dict[str, Any] = {}
        if draft.template_id is not None:
            stored = await templates.for_mailing(uow.session, principal, draft.template_id)
            made_from = {"template_id": stored.id, "template_version": stored.version}
            try:
                draft = MailingDraft.model_validate(
                    {
                        **draft.model_dump(),
                        "template": stored.parts.model_dump(),
                        "template_id": None,
                    }
                )
            except ValidationError as error:
                raise invalid_field("template_id", str(error.errors()[0]["msg"])) from None
        _template(draft)
        await _check_audience(uow.session, principal, draft)
        values = {**_values(draft), **made_from}
        await queries.insert_mailing(
            uow.session,
            {
                **values,
                "id": mailing_id,
                "channel": draft.channel,
                "status": "draft",
                "directions": draft.directions,
                "series_id": mailing_id if draft.recurrence is not None else None,
                "version": 1,
                "created_by": principal.subject,
                "updated_by": principal.subject,
            },
        )
        await uow.audit(
            kind=KIND,
            entity_id=mailing_id,
            action="created",
            version=1,
            changes={k: {"old": None, "new": _json(v)} for k, v in values.items()},
        )
    return await get(runtime=runtime, principal=principal, mailing_id=mailing_id)


def _json(value: Any) -> Any:
    """A value as the audit's JSON keeps it (an event's id as text, a time in ISO 8601)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    return value.isoformat() if hasattr(value, "isoformat") else value


async def get(*, runtime: ServiceRuntime, principal: Principal, mailing_id: uuid.UUID) -> Mailing:
    async with runtime.sessions() as session:
        return await _visible(session, principal, mailing_id)


async def list_mailings(
    *, runtime: ServiceRuntime, principal: Principal, status: str | None, limit: int
) -> list[Mailing]:
    async with runtime.sessions() as session:
        return await queries.list_visible(session, principal, status, limit)


async def change(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    mailing_id: uuid.UUID,
    patch: MailingPatch,
    expected: set[int],
) -> Mailing:
    """Change a mailing not started yet (409 ``mailing-started`` otherwise)."""
    async with campaigns.work(runtime, principal) as uow:
        current = await _locked(uow, principal, mailing_id)
        if current.status not in EDITABLE_STATUSES:
            raise Conflict("A started mailing cannot be changed.", kind="mailing-started")
        draft = MailingDraft.model_validate(
            {
                "title": current.title,
                "directions": current.directions,
                "campaign_id": current.campaign_id,
                "template": current.parts.model_dump(),
                "attachments": current.attachments,
                "reply_to": current.reply_to,
                "audience": current.audience,
                "scheduled_at": current.scheduled_at,
                "recurrence": current.recurrence,
                "channel": current.channel,
                "post": current.post,
                **patch.model_dump(exclude_unset=True),
            }
        )
        _template(draft)
        await _check_audience(uow.session, principal, draft)
        old, new = _values(MailingDraft.model_validate(_draft_of(current))), _values(draft)
        changes = {
            k: {"old": _json(old[k]), "new": _json(v)} for k, v in new.items() if old[k] != v
        }
        if "audience" in changes:  # a dynamic list resolved when it was sent no longer is
            new |= {"audience_organizations": None, "audience_resolved_at": None}
        await write_version(
            uow,
            MAILING,
            mailing_id,
            current=current.version,
            expected=expected,
            values=new,
            action="changed",
            changes=changes,
        )
    return await get(runtime=runtime, principal=principal, mailing_id=mailing_id)


def _draft_of(mailing: Mailing) -> dict[str, Any]:
    return {
        "title": mailing.title,
        "directions": mailing.directions,
        "campaign_id": mailing.campaign_id,
        "template": mailing.parts.model_dump(),
        "attachments": mailing.attachments,
        "reply_to": mailing.reply_to,
        "audience": mailing.audience,
        "scheduled_at": mailing.scheduled_at,
        "recurrence": mailing.recurrence,
        "channel": mailing.channel,
        "post": mailing.post,
    }


_ACTIONS = {"send": "scheduled", "pause": "paused", "resume": "sending", "cancel": "cancelled"}


async def act(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    mailing_id: uuid.UUID,
    action: str,
    expected: set[int],
    authorization: str = "",
) -> Mailing:
    """``send`` (now, or at ``scheduled_at``), ``pause``, ``resume``, ``cancel`` (409
    ``status-transition`` when the mailing's state does not allow it). Sending to a dynamic
    list resolves it now, by the directory for the caller, and keeps its organizations."""
    target = _ACTIONS[action]
    members = None
    if action == "send":
        members = await _dynamic_members(
            runtime,
            await get(runtime=runtime, principal=principal, mailing_id=mailing_id),
            authorization,
        )
    async with campaigns.work(runtime, principal) as uow:
        current = await _locked(uow, principal, mailing_id)
        if not status_allowed(current.status, target):
            raise Conflict(
                f"A {current.status} mailing cannot be {target}.", kind="status-transition"
            )
        values: dict[str, Any] = {"status": target}
        if action == "send":
            if current.channel == EMAIL and not _template(current).refers_to("unsubscribe_url"):
                raise invalid_field(
                    "template", "an e-mail mailing needs {{ unsubscribe_url }}", "unsubscribe_link"
                )
            await _check_audience(uow.session, principal, current)
            if current.scheduled_at is None:
                values["scheduled_at"] = await uow.session.scalar(_now())
            if members is not None:
                if current.recurrence is not None:
                    raise invalid_field(
                        "audience",
                        "a newsletter cannot resolve a dynamic list for each issue (nobody "
                        "sends it then): use a static list",
                        "dynamic_newsletter",
                    )
                values["audience_organizations"] = members
                values["audience_resolved_at"] = await uow.session.scalar(_now())
        note = None
        if members is not None:
            note = f"the dynamic list resolved to {len(members)} organizations"
        if action == "cancel":
            cancelled = await queries.cancel_pending(uow.session, mailing_id)
            values["finished_at"] = await uow.session.scalar(_now())
            note = f"{cancelled} pending recipients cancelled" if cancelled else None
        await write_version(
            uow,
            MAILING,
            mailing_id,
            current=current.version,
            expected=expected,
            values=values,
            action=action,
            changes={"status": {"old": current.status, "new": target}},
            note=note,
        )
    return await get(runtime=runtime, principal=principal, mailing_id=mailing_id)


def _now() -> Select[Any]:
    return select(func.now())


# --- resolving the audience ------------------------------------------------------------------


@dataclass
class _Facts:
    """What classifying candidates needs, loaded in a few statements."""

    persons: dict[uuid.UUID, PersonRecord]
    organizations: dict[uuid.UUID, OrganizationRecord]
    contacts: dict[uuid.UUID, Contact]
    premises: dict[uuid.UUID, Premises]
    consents: dict[uuid.UUID, Any]
    event: dict[str, Any] | None


async def _list_organizations(
    session: AsyncSession,
    mailing: Mailing,
    audience: ListAudience,
    resolved: list[uuid.UUID] | None,
) -> set[uuid.UUID]:
    """A list audience's organizations: just resolved by the directory, or as kept when the
    mailing was sent (a dynamic list), or the static list's members now."""
    if resolved is not None:
        return set(resolved)
    kept = await queries.kept_audience(session, mailing.id)
    if kept is not None:
        return set(kept)
    return set(await lists.members_of(session, audience.list_id) or [])


async def _dynamic_members(
    runtime: ServiceRuntime, mailing: Mailing, authorization: str
) -> list[uuid.UUID] | None:
    """A dynamic list audience's organizations now, resolved by the directory for the caller
    (None: the audience is no dynamic list)."""
    audience = mailing.audience
    if not isinstance(audience, ListAudience):
        return None
    async with runtime.sessions() as session:
        kind = await lists.list_kind(session, audience.list_id)
    if kind != "dynamic":
        return None
    return (await lists.resolve_dynamic(runtime, audience.list_id, authorization)).members


async def _candidates(
    session: AsyncSession, mailing: Mailing, resolved: list[uuid.UUID] | None = None
) -> list[Candidate]:
    audience = mailing.audience
    if isinstance(audience, GreetingDayAudience):
        return await queries.kept_candidates(session, mailing.id)
    if isinstance(audience, StageAudience):
        found = await participants.at_stage(session, audience.campaign_id, audience.stage_id)
        direct = [Candidate(p.person_id, p.organization_id) for p in found if p.person_id]
        whole = {p.organization_id for p in found if p.person_id is None}
        people = await contacts_queries.employed_at(session, whole)
        named = {c.person_id for c in direct}
        return direct + [
            c for c in candidates_at(people, whole, audience.positions) if c.person_id not in named
        ]
    if isinstance(audience, ListAudience):
        organizations = await _list_organizations(session, mailing, audience, resolved)
    else:
        assert isinstance(audience, OrganizationsAudience)
        organizations = set(audience.organization_ids)
    chosen: list[Candidate] = []
    async for page in contacts_queries.employed_at_pages(session, organizations):
        chosen.extend(candidates_at(page, organizations, audience.positions))  # each person once
    return chosen


async def _facts(
    session: AsyncSession, mailing: Mailing, candidates: Iterable[Candidate]
) -> _Facts:
    listed = list(candidates)
    person_ids = [c.person_id for c in listed]
    organization_ids = [c.organization_id for c in listed if c.organization_id]
    event_id = mailing.campaign_id
    if event_id is None and isinstance(mailing.audience, StageAudience):
        event_id = mailing.audience.campaign_id
    event = None
    if event_id is not None:
        found = await campaigns.campaign_of(session, event_id)
        event = None if found is None else found.model_dump()
    return _Facts(
        persons=await READ_MODELS.persons_of(session, person_ids),
        organizations=await READ_MODELS.organizations_of(session, organization_ids),
        contacts=await contacts_queries.contacts_of(session, person_ids),
        premises=await contacts_queries.premises_of(session, organization_ids),
        consents=await consent.granted(session, person_ids, mailing.channel),
        event=event,
    )


def _outside(
    mailing: Mailing, person: PersonRecord | None, organization: OrganizationRecord | None
) -> bool:
    """A person or organization none of whose directions is the mailing's."""
    wanted = set(mailing.directions)
    if organization is not None:
        return wanted.isdisjoint(organization.directions)
    return person is not None and wanted.isdisjoint(person.directions)


def _classify_all(
    mailing: Mailing,
    template: MessageTemplate | None,
    candidates: list[Candidate],
    facts: _Facts,
    url: Any,
    *,
    keep_values: bool = True,
) -> list[tuple[Resolved, dict[str, Any] | None]]:
    """Each candidate's row and (for those who get it) its template values: CPU work, run in a
    thread (``template`` None: its fields were checked when the mailing started;
    ``keep_values`` False: the values are dropped once checked, as a whole audience's would
    not fit in memory)."""
    out: list[tuple[Resolved, dict[str, Any] | None]] = []
    for candidate in candidates:
        person = facts.persons.get(candidate.person_id)
        organization = (
            facts.organizations.get(candidate.organization_id)
            if candidate.organization_id
            else None
        )
        contact = facts.contacts.get(candidate.person_id)
        values = None
        if person is not None:
            email = contact.email_at(candidate.organization_id) if contact else None
            values = context(
                person=person,
                contact=contact,
                organization=organization,
                email=email,
                event=facts.event,
                mailing_title=mailing.title,
                unsubscribe_url=url(candidate.person_id),
            )
        if _outside(mailing, person, organization):
            resolved = Resolved(
                candidate.person_id,
                candidate.organization_id,
                None,
                "excluded",
                "unknown_person",
                "outside the mailing's directions",
            )
        else:
            resolved = classify(
                candidate,
                person=person,
                organization=organization,
                contact=contact,
                consent=facts.consents.get(candidate.person_id),
                template=template,
                context=values,
                channel=mailing.channel,
                postal=_postal(facts, candidate),
                fax=_fax_number(facts, candidate),
            )
        out.append((resolved, values if keep_values else None))
    return out


def _postal(facts: _Facts, candidate: Candidate) -> PostalAddress | None:
    """The postal address a letter to the candidate goes to: their organization's."""
    if candidate.organization_id is None:
        return None
    premises = facts.premises.get(candidate.organization_id)
    return None if premises is None else postal_address(premises.postal_address)


async def _resolve(
    session: AsyncSession,
    mailing: Mailing,
    template: MessageTemplate,
    resolved: list[uuid.UUID] | None = None,
) -> list[Resolved]:
    """Each candidate classified (no writes)."""
    return [r async for page in _resolved_pages(session, mailing, template, resolved) for r in page]


RESOLVE_PAGE = 5_000
"""Candidates classified per page when a mailing starts or is validated."""


async def _resolved_pages(
    session: AsyncSession,
    mailing: Mailing,
    template: MessageTemplate,
    resolved: list[uuid.UUID] | None = None,
    candidates: list[Candidate] | None = None,
) -> AsyncIterator[list[Resolved]]:
    """The candidates classified, ``RESOLVE_PAGE`` at a time: only one page's facts (persons,
    contacts, consents) are held at once, however large the audience."""
    if candidates is None:
        candidates = await _candidates(session, mailing, resolved)
    for start in range(0, len(candidates), RESOLVE_PAGE):
        page = candidates[start : start + RESOLVE_PAGE]
        facts = await _facts(session, mailing, page)
        classified = await asyncio.to_thread(
            functools.partial(_classify_all, keep_values=False),
            mailing,
            template,
            page,
            facts,
            lambda _p: _PLACEHOLDER_URL,
        )
        yield [resolved for resolved, _ in classified]


async def _keep_recipients(
    session: AsyncSession,
    mailing: Mailing,
    resolved: list[uuid.UUID] | None = None,
    candidates: list[Candidate] | None = None,
) -> tuple[int, int]:
    """Resolve the recipients of a starting mailing and keep them, page by page; (resolved,
    to send)."""
    template = compile_parts(mailing.parts)
    total = pending = 0
    async for page in _resolved_pages(session, mailing, template, resolved, candidates):
        await queries.insert_recipients(session, [r.row(mailing.id) for r in page])
        total += len(page)
        pending += sum(1 for r in page if r.status == "pending")
    return total, pending


async def validate(
    *, runtime: ServiceRuntime, principal: Principal, mailing_id: uuid.UUID, authorization: str
) -> Validation:
    """Who a send now would reach and who not, with why (no writes; a dynamic list resolved
    by the directory for the caller). The excluded are only those the caller may see: a shared
    list's members of other directions name nobody."""
    async with runtime.sessions() as session:
        mailing = await _visible(session, principal, mailing_id)
        template = _template(mailing)
    members = None
    if mailing.audience_resolved_at is None:
        members = await _dynamic_members(runtime, mailing, authorization)
    async with runtime.sessions() as session:
        resolved = await _resolve(session, mailing, template, members)
        excluded = [r for r in resolved if r.status == "excluded"]
        if not principal.sees_all_directions:
            persons = await READ_MODELS.persons_of(session, {r.person_id for r in excluded})
            seen = {i for i, p in persons.items() if principal.can_see(p.directions)}
            excluded = [r for r in excluded if r.person_id in seen]
    counts: dict[str, int] = {}
    for r in excluded:
        counts[str(r.reason)] = counts.get(str(r.reason), 0) + 1
    shown = sorted(excluded, key=lambda r: r.person_id)[:MAX_EXCLUSIONS_SHOWN]
    return Validation(
        recipients=sum(1 for r in resolved if r.status != "excluded"),
        excluded=counts,
        exclusions=[Recipient.model_validate(r.row(mailing_id)) for r in shown],
        unsubscribe_link=template.refers_to("unsubscribe_url"),
    )


async def preview(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    mailing_id: uuid.UUID,
    person_id: uuid.UUID,
    organization_id: uuid.UUID | None,
) -> Preview:
    """The message as a chosen person would get it (and whether a send would exclude them)."""
    async with runtime.sessions() as session:
        mailing = await _visible(session, principal, mailing_id)
        template = _template(mailing)
        person = (await READ_MODELS.persons_of(session, [person_id])).get(person_id)
        if person is None or person.deleted or not principal.can_see(person.directions):
            raise invalid_field(
                "person_id", "no such person", "unknown_reference", location="query"
            )
        if organization_id is None:
            contact = (await contacts_queries.contacts_of(session, [person_id])).get(person_id)
            if contact and contact.employments:
                organization_id = contact.employments[0].organization_id
        candidate = Candidate(person_id, organization_id)
        facts = await _facts(session, mailing, [candidate])
        key = await queries.signing_key(session)
        await session.commit()
    url = _url_maker(settings_of(runtime), key, mailing_id)
    [(resolved, values)] = await asyncio.to_thread(
        _classify_all, mailing, template, [candidate], facts, url
    )
    rendered = try_render(template, values or {})
    shown = Preview(
        person_id=person_id,
        organization_id=organization_id,
        email=resolved.email,
        excluded=resolved.reason,
        detail=resolved.detail,
    )
    if isinstance(rendered, str):
        return shown.model_copy(update={"detail": shown.detail or rendered})
    return shown.model_copy(
        update={"subject": rendered.subject, "html": rendered.html, "text": rendered.text}
    )


def settings_of(runtime: ServiceRuntime) -> CampaignsSettings:
    settings = runtime.settings
    assert isinstance(settings, CampaignsSettings)
    return settings


def _url_maker(settings: CampaignsSettings, key: bytes, mailing_id: uuid.UUID) -> Any:
    base = settings.public_base_url.rstrip("/")

    def url(person_id: uuid.UUID) -> str:
        return f"{base}/v1/public/unsubscribe/{unsubscribe_token(key, mailing_id, person_id)}"

    return url


async def list_recipients(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    mailing_id: uuid.UUID,
    status: str | None,
    after: uuid.UUID | None,
    limit: int,
) -> list[Recipient]:
    async with runtime.sessions() as session:
        await _visible(session, principal, mailing_id)
        return await queries.recipients(
            session, mailing_id, status=status, after=after, limit=limit, reader=principal
        )


# --- the worker's steps ----------------------------------------------------------------------


def _work(runtime: ServiceRuntime) -> Any:
    return unit_of_work(runtime.sessions, runtime.outbox, audit_log, WORKER)


async def prepare_due(runtime: ServiceRuntime) -> bool:
    """Resolve the recipients of the mailing longest due and keep them (one transaction; a
    replica preparing another mailing is not waited for); whether there was one."""
    async with _work(runtime) as uow:
        mailing = await queries.due(uow.session)
        if mailing is None:
            return False
        total, pending = await _keep_recipients(uow.session, mailing)
        await write_version(
            uow,
            MAILING,
            mailing.id,
            current=mailing.version,
            expected={mailing.version},
            values={"status": "sending", "prepared_at": await uow.session.scalar(_now())},
            action="prepared",
            changes={"status": {"old": "scheduled", "new": "sending"}},
            note=f"{total} resolved, {pending} to send",
        )
        if mailing.recurrence is not None:
            await _schedule_next_issue(uow, mailing)
    return True


async def start_now(
    uow: UnitOfWork, values: dict[str, Any], candidates: list[Candidate], note: str
) -> Mailing:
    """A mailing started at once for candidates chosen by its maker (a greeting's day, ADR 51):
    its recipients classified and kept as a due mailing's are when it starts (consent, blocks,
    unsubscribes, addresses, template fields), then handed over batch by batch as any other."""
    now = await uow.session.scalar(_now())
    mailing_id = values["id"]
    await queries.insert_mailing(
        uow.session,
        {
            **values,
            "status": "sending",
            "scheduled_at": now,
            "prepared_at": now,
            "version": 1,
            "created_by": uow.actor.subject,
            "updated_by": uow.actor.subject,
        },
    )
    mailing = await queries.load(uow.session, mailing_id)
    assert mailing is not None
    total, pending = await _keep_recipients(uow.session, mailing, None, candidates)
    await uow.audit(
        kind=KIND,
        entity_id=mailing_id,
        action="created",
        version=1,
        changes={"status": {"old": None, "new": "sending"}},
        note=f"{note}: {total} resolved, {pending} to send",
    )
    return mailing


async def sendable(
    session: AsyncSession, values: dict[str, Any], candidates: list[Candidate]
) -> set[uuid.UUID]:
    """The candidates a mailing of ``values`` started now would send to (no writes): a
    greeting retries a recipient excluded earlier only once they would get it (ADR 51)."""
    now = await session.scalar(_now())
    mailing = Mailing.model_validate(
        {
            **values,
            "status": "sending",
            "version": 1,
            "created_at": now,
            "created_by": WORKER.subject,
            "updated_at": now,
        }
    )
    template = compile_parts(mailing.parts)
    return {
        r.person_id
        async for page in _resolved_pages(session, mailing, template, None, candidates)
        for r in page
        if r.status == "pending"
    }


async def _schedule_next_issue(uow: UnitOfWork, mailing: Mailing) -> None:
    """A newsletter's next issue, scheduled when this one starts: the same template, audience
    and schedule; it resolves its audience when it falls due (cancel it to end the series)."""
    assert mailing.recurrence is not None
    assert mailing.scheduled_at is not None
    series_id = mailing.series_id or mailing.id
    first = await queries.load(uow.session, series_id) if series_id != mailing.id else mailing
    anchor = (first or mailing).scheduled_at or mailing.scheduled_at
    zone = ZoneInfo(mailing.recurrence.time_zone)
    due = next_issue(mailing.recurrence, mailing.scheduled_at, anchor.astimezone(zone).day)
    issue_id = uuid.uuid4()
    await queries.insert_mailing(
        uow.session,
        {
            **_values(MailingDraft.model_validate(_draft_of(mailing))),
            "id": issue_id,
            "channel": mailing.channel,
            "status": "scheduled",
            "directions": mailing.directions,
            "scheduled_at": due,
            "series_id": series_id,
            "issue": mailing.issue + 1,
            "version": 1,
            "created_by": uow.actor.subject,
            "updated_by": uow.actor.subject,
        },
    )
    await uow.audit(
        kind=KIND,
        entity_id=issue_id,
        action="created",
        version=1,
        changes={"scheduled_at": {"old": None, "new": due.isoformat()}},
        note=f"issue {mailing.issue + 1} of the newsletter {series_id}",
    )


async def hand_over(
    runtime: ServiceRuntime, settings: CampaignsSettings, storage: AttachmentStorage | None = None
) -> int:
    """One batch of pending recipients of each sending mailing, rendered and handed to the
    notifier through the outbox in the transaction that marks them queued; how many (fax
    mailings only with a ``storage`` for their PDFs)."""
    async with runtime.sessions() as session:
        sending = await queries.sending(session, EMAIL)
        if storage is not None:
            sending += await queries.sending(session, "fax")
    handed = 0
    for mailing_id in sending:
        count = await _batch(runtime, settings, mailing_id, storage)
        if count == 0:
            async with _work(runtime) as uow:
                await queries.finish_if_handed_over(uow.session, mailing_id)
        handed += count
    return handed


async def _batch(
    runtime: ServiceRuntime,
    settings: CampaignsSettings,
    mailing_id: uuid.UUID,
    storage: AttachmentStorage | None,
) -> int:
    async with _work(runtime) as uow:
        mailing = await queries.share_if_sending(uow.session, mailing_id)
        if mailing is None:
            return 0
        claimed = await queries.claim_pending(uow.session, mailing_id, settings.mailing_batch_size)
        if not claimed:
            return 0
        template = compile_parts(mailing.parts)
        candidates = [Candidate(r.person_id, r.organization_id) for r in claimed]
        facts = await _facts(uow.session, mailing, candidates)
        key = await queries.signing_key(uow.session)
        if mailing.channel == "fax":
            assert storage is not None
            await _fax_batch(uow, settings, storage, mailing, template, candidates, facts, key)
            return len(claimed)
        url = _url_maker(settings, key, mailing_id)
        outcomes, envelopes = await asyncio.to_thread(
            _render_batch, uow, mailing, template, candidates, facts, url
        )
        await queries.record_outcomes(uow.session, mailing_id, outcomes)
        uow.stage(*envelopes)
    return len(claimed)


def _render_batch(
    uow: UnitOfWork,
    mailing: Mailing,
    template: MessageTemplate,
    candidates: list[Candidate],
    facts: _Facts,
    url: Any,
) -> tuple[list[Outcome], list[Envelope]]:
    """Classify again (consent withdrawn or a block since the mailing started excludes now) and
    render each message: the recipients' outcomes and the delivery requests."""
    outcomes: list[Outcome] = []
    envelopes: list[Envelope] = []
    for resolved, values in _classify_all(mailing, None, candidates, facts, url):
        if resolved.status != "pending" or values is None or resolved.email is None:
            outcomes.append((resolved.person_id, "excluded", resolved.reason, resolved.detail))
            continue
        rendered = try_render(template, values, checked=True)
        if isinstance(rendered, str):
            outcomes.append((resolved.person_id, "failed", "render_failed", rendered[:2000]))
            continue
        try:
            envelope = publishing.mailing_message(
                uow.outbox,
                mailing,
                resolved,
                rendered,
                unsubscribe_url=values["unsubscribe_url"],
                name=values["person"]["full_name"],
            )
        except ValidationError as error:  # a message too long for the notifier, say
            detail = str(error)[:2000]
            outcomes.append((resolved.person_id, "failed", "render_failed", detail))
            continue
        envelopes.append(envelope)
        outcomes.append((resolved.person_id, "queued", None, None))
    return outcomes, envelopes


# --- paper post (ADR 46) ----------------------------------------------------------------------


@functools.cache
def _printers(workers: int) -> ProcessPoolExecutor:
    """The worker processes that render paper mailings (spawned: a fork of a process running
    an event loop and threads is unsafe); each ends when the service process is gone."""
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=end_with_parent
    )


async def _in_printers(settings: CampaignsSettings, work: Callable[[Any], T], job: Any) -> T:
    """``work(job)`` in a printing worker process."""
    pool = _printers(settings.print_workers)
    try:
        return await asyncio.get_running_loop().run_in_executor(pool, work, job)
    except BrokenProcessPool:
        _printers.cache_clear()  # the next attempt gets new workers
        pool.shutdown(wait=False, cancel_futures=True)
        raise


def _print_key(mailing_id: uuid.UUID, name: str) -> str:
    return f"mailings/{mailing_id}/{name}"


PDF = "application/pdf"
PRINTS = {"letters": "letters.pdf", "envelopes": "envelopes.pdf"}
"""The PDFs of a printed paper mailing, by the name its download takes."""


async def print_due(
    runtime: ServiceRuntime, settings: CampaignsSettings, storage: AttachmentStorage
) -> int:
    """Print each sending paper mailing: its letters and envelopes as two PDFs (rendered in
    worker processes), stored, its recipients marked printed and it done, in one transaction
    (a replica printing another mailing is not waited for); how many letters."""
    async with runtime.sessions() as session:
        sending = await queries.sending(session, "post")
    printed = 0
    for mailing_id in sending:
        printed += await _print(runtime, settings, storage, mailing_id)
    return printed


async def _print(
    runtime: ServiceRuntime,
    settings: CampaignsSettings,
    storage: AttachmentStorage,
    mailing_id: uuid.UUID,
) -> int:
    async with _work(runtime) as uow:
        mailing = await queries.lock_if_sending(uow.session, mailing_id)
        if mailing is None or mailing.post is None:
            return 0
        claimed = await queries.claim_pending(uow.session, mailing_id, limit=None)
        candidates = [Candidate(r.person_id, r.organization_id) for r in claimed]
        facts = await _facts(uow.session, mailing, candidates)
        template = compile_parts(mailing.parts)
        outcomes, letters = await asyncio.to_thread(_letters, mailing, template, candidates, facts)
        letterhead = None
        if mailing.letterhead is not None:
            letterhead = await _read(storage, _print_key(mailing_id, "letterhead"))
        job = PrintJob(
            letters=letters,
            letterhead=letterhead,
            sender=Sender(mailing.post.sender_name, mailing.post.sender),
            envelope=mailing.post.envelope,
            cartridge_yield=settings.toner_cartridge_yield,
        )
        result = await _in_printers(settings, print_job, job)
        for name, data in (("letters", result.letters_pdf), ("envelopes", result.envelopes_pdf)):
            key = _print_key(mailing_id, PRINTS[name])
            await storage.put(key, single(data), content_type=PDF)
        await queries.record_outcomes(uow.session, mailing_id, outcomes)
        used = result.consumables
        await queries.insert_print_run(
            uow.session,
            {
                "mailing_id": mailing_id,
                "campaign_id": mailing.campaign_id,
                "letters": len(letters),
                "pages": result.pages,
                "sheets": used.sheets,
                "envelope": mailing.post.envelope,
                "envelopes": used.envelopes,
                "toner_cartridges": used.toner_cartridges,
            },
        )
        await write_version(
            uow,
            MAILING,
            mailing_id,
            current=mailing.version,
            expected={mailing.version},
            values={"status": "done", "finished_at": await uow.session.scalar(_now())},
            action="printed",
            changes={"status": {"old": "sending", "new": "done"}},
            note=f"{len(letters)} letters on {used.sheets} sheets, {used.envelopes} envelopes",
        )
    return len(letters)


def _rendered_each(
    mailing: Mailing,
    template: MessageTemplate,
    candidates: list[Candidate],
    facts: _Facts,
    destination: Callable[[_Facts, Candidate], T | None],
    outcomes: list[Outcome],
) -> Iterator[tuple[uuid.UUID, dict[str, Any], RenderedMessage, T]]:
    """Classify again (a consent withdrawn or a block since the start excludes now) and render
    each text: those excluded, without a ``destination`` or failing to render are recorded in
    ``outcomes``; the others come out as (person, values, message, destination)."""
    for (resolved, values), candidate in zip(
        _classify_all(mailing, None, candidates, facts, lambda _p: None),
        candidates,
        strict=True,
    ):
        where = destination(facts, candidate)
        if resolved.status != "pending" or values is None or where is None:
            outcomes.append((resolved.person_id, "excluded", resolved.reason, resolved.detail))
            continue
        rendered = try_render(template, values, checked=True)
        if isinstance(rendered, str) or not rendered.text:
            detail = rendered[:2000] if isinstance(rendered, str) else "no text"
            outcomes.append((resolved.person_id, "failed", "render_failed", detail))
            continue
        yield resolved.person_id, values, rendered, where


def _letters(
    mailing: Mailing, template: MessageTemplate, candidates: list[Candidate], facts: _Facts
) -> tuple[list[Outcome], list[Letter]]:
    """The recipients' outcomes and the letters of those printed."""
    outcomes: list[Outcome] = []
    letters: list[Letter] = []
    for person_id, values, rendered, address in _rendered_each(
        mailing, template, candidates, facts, _postal, outcomes
    ):
        letters.append(_letter(values, rendered, address))
        outcomes.append((person_id, "printed", None, None))
    return outcomes, letters


def _letter(
    values: dict[str, Any],
    rendered: RenderedMessage,
    address: PostalAddress | None,
    fax: str | None = None,
) -> Letter:
    """A recipient's letter: to the organization and the person (in the dative), at the
    address or fax number, the rendered subject and text."""
    person, organization = values["person"], values["organization"]
    addressee = [str(organization["legal_name"])] if organization else []
    addressee.append(str(person["dative"]["full_name"] or person["full_name"]))
    if fax is not None:
        addressee.append(f"Факс: {fax}")
    return Letter(
        addressee=tuple(addressee),
        address=address,
        subject=rendered.subject,
        body=rendered.text or "",
        recipient=", ".join([*addressee[:1], str(person["full_name"])]),
    )


# --- fax (ADR 47) ------------------------------------------------------------------------------


async def _fax_batch(
    uow: UnitOfWork,
    settings: CampaignsSettings,
    storage: AttachmentStorage,
    mailing: Mailing,
    template: MessageTemplate,
    candidates: list[Candidate],
    facts: _Facts,
    key: bytes,
) -> None:
    """A batch of a fax mailing: each recipient's letter as a PDF of its own (rendered in the
    worker processes), stored, and handed to the fax gateway through the notifier's webhook
    channel with signed URLs to fetch it and to report the result."""
    outcomes, faxes = await asyncio.to_thread(_faxes, mailing, template, candidates, facts)
    letterhead = None
    if mailing.letterhead is not None:
        letterhead = await _read(storage, _print_key(mailing.id, "letterhead"))
    job = FaxJob(letters=[letter for _, letter, _, _ in faxes], letterhead=letterhead)
    documents = await _in_printers(settings, fax_documents, job)
    base = settings.public_base_url.rstrip("/") + "/v1/public/fax"
    for (person_id, letter, number, rendered), pdf in zip(faxes, documents, strict=True):
        await storage.put(_fax_key(mailing.id, person_id), single(pdf), content_type=PDF)
        document = unsubscribe_token(key, mailing.id, person_id, "fax-document")
        result = unsubscribe_token(key, mailing.id, person_id, "fax-result")
        uow.stage(
            publishing.fax_message(
                uow.outbox,
                mailing,
                person_id,
                rendered,
                endpoint=settings.fax_endpoint,
                name=letter.recipient,
                data={
                    "fax_number": number,
                    "document_url": f"{base}/{document}",
                    "result_url": f"{base}/{result}/result",
                    "mailing_id": str(mailing.id),
                },
            )
        )
        outcomes.append((person_id, "queued", None, None))
    await queries.record_outcomes(uow.session, mailing.id, outcomes)


def _fax_key(mailing_id: uuid.UUID, person_id: uuid.UUID) -> str:
    return _print_key(mailing_id, f"fax/{person_id}.pdf")


def _faxes(
    mailing: Mailing, template: MessageTemplate, candidates: list[Candidate], facts: _Facts
) -> tuple[list[Outcome], list[tuple[uuid.UUID, Letter, str, RenderedMessage]]]:
    """The outcomes of those who get no fax, and (person, letter, number, message) of those
    who do."""
    outcomes: list[Outcome] = []
    faxes = [
        (person_id, _letter(values, rendered, None, number), number, rendered)
        for person_id, values, rendered, number in _rendered_each(
            mailing, template, candidates, facts, _fax_number, outcomes
        )
    ]
    return outcomes, faxes


def _fax_number(facts: _Facts, candidate: Candidate) -> str | None:
    """The fax number a fax to the candidate goes to: their organization's."""
    if candidate.organization_id is None:
        return None
    premises = facts.premises.get(candidate.organization_id)
    return None if premises is None else premises.fax


async def open_fax(
    *, runtime: ServiceRuntime, storage: AttachmentStorage, token: str
) -> AsyncIterator[bytes]:
    """A recipient's fax PDF for the gateway (the document token: 404 otherwise)."""
    async with runtime.sessions() as session, session.begin():
        mailing_id, person_id = await _token_target(session, token, "fax-document")
    try:
        return await storage.get(_fax_key(mailing_id, person_id))
    except BlobMissing:
        raise NotFound(_BAD_LINK) from None


FAX_GATEWAY = Actor(subject="fax-gateway", kind="service")


async def fax_result(*, runtime: ServiceRuntime, token: str, result: FaxResult) -> None:
    """The gateway's result on a recipient's fax (the result token: 404 otherwise): ``sent``,
    or ``failed`` with the gateway's reason; a result seen again changes nothing."""
    async with runtime.sessions() as session, session.begin():
        target = await _token_target(session, token, "fax-result")
    status = "sent" if result.status == "sent" else "failed"
    pages = None if result.pages is None else f"{result.pages} pages"
    detail = "; ".join(x for x in (f"fax {result.status}", pages, result.detail) if x)
    async with unit_of_work(runtime.sessions, runtime.outbox, audit_log, FAX_GATEWAY) as uow:
        if await queries.record_result(uow.session, *target, status, detail) is not None:
            await _published_result(uow, *target, status, detail)


async def fail_unanswered_faxes(runtime: ServiceRuntime, settings: CampaignsSettings) -> int:
    """Faxes the gateway took but never reported on within ``fax_callback_timeout_minutes``:
    failed, so that none stays queued forever (ADR 47), each result published (ADR 50); how
    many."""
    minutes = settings.fax_callback_timeout_minutes
    detail = f"no callback from the fax gateway within {minutes} minutes"
    async with _work(runtime) as uow:
        failed = await queries.fail_unanswered_faxes(uow.session, minutes, detail)
        for mailing_id, person_id in failed:
            await _published_result(uow, mailing_id, person_id, "failed", detail)
    return len(failed)


async def _read(storage: AttachmentStorage, key: str) -> bytes:
    return b"".join([chunk async for chunk in await storage.get(key)])


async def set_letterhead(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    storage: AttachmentStorage,
    settings: CampaignsSettings,
    mailing_id: uuid.UUID,
    upload: UploadFile,
    expected: set[int],
) -> Mailing:
    """The company letterhead (a PNG or JPEG image) of a paper or fax mailing not started yet:
    its letters are printed under it. Checked in a thread; stored before the mailing names it."""
    async with runtime.sessions() as session:
        mailing = await _visible(session, principal, mailing_id)
    writable_directions(principal, mailing.directions)
    if mailing.channel == EMAIL:
        raise invalid_field("channel", "only paper and fax mailings have a letterhead", "not_paper")
    data = await upload.read(settings.letterhead_max_bytes + 1)
    if len(data) > settings.letterhead_max_bytes:
        raise ProblemError(413, "Too large", "The letterhead image is too large.")
    try:
        width, height = await asyncio.to_thread(letterhead_size, data)
    except LetterheadInvalid as exc:
        raise invalid_field("file", str(exc), "not_an_image", location="body") from None
    content_type = "image/png" if data.startswith(b"\x89PNG") else "image/jpeg"
    await storage.put(_print_key(mailing_id, "letterhead"), single(data), content_type=content_type)
    head = Letterhead(content_type=content_type, width=width, height=height, size=len(data))
    async with campaigns.work(runtime, principal) as uow:
        current = await _locked(uow, principal, mailing_id)
        if current.status not in EDITABLE_STATUSES:
            raise Conflict("A started mailing cannot be changed.", kind="mailing-started")
        await write_version(
            uow,
            MAILING,
            mailing_id,
            current=current.version,
            expected=expected,
            values={"letterhead": head.model_dump()},
            action="letterhead",
            changes={"letterhead": {"old": None, "new": head.model_dump()}},
        )
    return await get(runtime=runtime, principal=principal, mailing_id=mailing_id)


async def open_print(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    storage: AttachmentStorage,
    mailing_id: uuid.UUID,
    name: str,
) -> AsyncIterator[bytes]:
    """A printed paper mailing's letters or envelopes PDF (404 before it is printed)."""
    async with runtime.sessions() as session:
        mailing = await _visible(session, principal, mailing_id)
    if mailing.printed is None:
        raise NotFound("The mailing has not been printed.")
    try:
        return await storage.get(_print_key(mailing_id, PRINTS[name]))
    except BlobMissing:
        raise NotFound("The printed file is missing from the storage.") from None


async def delivery_result(
    uow: UnitOfWork, key: tuple[uuid.UUID, uuid.UUID], status: str, reason: str | None
) -> None:
    """A result from the notifier on a recipient, published once (for the automation
    engine); a hard bounce is published for the directory to mark the address for review; a
    complaint (reported as spam, after it was sent) withdraws the person's e-mail consent, as
    an unsubscribe would."""
    mailing_id, person_id = key
    if status == "complained":
        if await queries.record_complaint(uow.session, mailing_id, person_id):
            await consent.unsubscribed(uow, person_id, mailing_id, EMAIL)
            await _published_result(uow, mailing_id, person_id, status, reason)
        return
    found = await queries.record_result(uow.session, mailing_id, person_id, status, reason)
    if found is None:
        return
    await _published_result(uow, mailing_id, person_id, status, reason)
    if status != "bounced":
        return
    email, directions = found
    if email:
        uow.stage(
            publishing.address_bounced(
                uow.outbox, person_id, email, mailing_id, reason, directions, uow.actor
            )
        )


async def _published_result(
    uow: UnitOfWork, mailing_id: uuid.UUID, person_id: uuid.UUID, status: str, reason: str | None
) -> None:
    facts = await queries.result_facts(uow.session, mailing_id, person_id)
    uow.stage(
        publishing.mailing_result(
            uow.outbox, mailing_id, person_id, status, reason, facts, uow.actor
        )
    )


# --- the unsubscribe link ------------------------------------------------------------------------

_BAD_LINK = "The unsubscribe link is not valid."


async def _token_target(
    session: AsyncSession, token: str, purpose: TokenPurpose = "unsubscribe"
) -> tuple[uuid.UUID, uuid.UUID]:
    key = await queries.signing_key(session)
    found = read_unsubscribe_token(key, token, purpose)
    if found is None or await queries.load(session, found[0]) is None:
        raise NotFound(_BAD_LINK)
    return found


async def check_token(*, runtime: ServiceRuntime, token: str) -> None:
    """404 unless the token is one of ours, for a mailing that exists."""
    async with runtime.sessions() as session, session.begin():
        await _token_target(session, token)


async def unsubscribe(*, runtime: ServiceRuntime, token: str) -> None:
    """The link's person withdraws e-mail consent (recorded once, published)."""
    async with runtime.sessions() as session, session.begin():
        mailing_id, person_id = await _token_target(session, token)
    actor = Actor(subject=f"person:{person_id}", kind="person")
    async with unit_of_work(runtime.sessions, runtime.outbox, audit_log, actor) as uow:
        await consent.unsubscribed(uow, person_id, mailing_id, EMAIL)
