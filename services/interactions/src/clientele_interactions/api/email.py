"""E-mail capture: an uploaded .eml or Outlook .msg becomes an interaction with attachments."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import etag
from clientele_shared.http.problems import ProblemError
from fastapi import APIRouter, File, Form, Request, Response, UploadFile, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.api.attachments import read_upload, storage_of
from clientele_interactions.api.common import ClockDep, Runtime, Settings, Writer
from clientele_interactions.domain.cards import ClientCard
from clientele_interactions.domain.email_capture import (
    CapturedMessage,
    UnreadableMessage,
    match_addresses,
    parse_message,
)
from clientele_interactions.domain.model import (
    AddressMatch,
    Attachment,
    CapturedEmail,
    SkippedAttachment,
)
from clientele_interactions.domain.rules import created_changes
from clientele_interactions.operations import (
    Conflict,
    actor_of,
    add_attachment,
    audit,
    bump_summary,
    discard,
    insert_interaction,
    writable_card,
)
from clientele_interactions.publishing import Publisher
from clientele_interactions.storage import AttachmentRefused, check_attachment, safe_filename
from clientele_interactions.store import (
    client_cards,
    employees,
    employments,
    interactions,
    persons,
)

router = APIRouter(prefix="/v1/interactions/email", tags=["e-mail capture"])


async def persons_by_address(session: AsyncSession, addresses: list[str]) -> dict[str, list[Any]]:
    """Known persons by e-mail address (their own addresses and those of their positions)."""
    found: dict[str, list[Any]] = {}
    if not addresses:
        return found
    own = await session.execute(
        select(persons.c.person_id, persons.c.emails).where(
            persons.c.emails.overlap(addresses), ~persons.c.deleted
        )
    )
    work = await session.execute(
        select(employments.c.person_id, employments.c.emails).where(
            employments.c.emails.overlap(addresses), ~employments.c.deleted
        )
    )
    for person_id, emails in [*work.all(), *own.all()]:
        for address in emails:
            if address in addresses and person_id not in found.setdefault(address, []):
                found[address].append(person_id)
    return found


async def employees_by_address(session: AsyncSession, addresses: list[str]) -> dict[str, Any]:
    """The company's active employees by e-mail address."""
    if not addresses:
        return {}
    rows = await session.execute(
        select(employees.c.email, employees.c.employee_id).where(
            employees.c.email.in_(addresses), employees.c.active
        )
    )
    return dict(rows.tuples().all())


async def employed_at(
    session: AsyncSession, organization_id: uuid.UUID, person_ids: list[Any]
) -> set[Any]:
    if not person_ids:
        return set()
    rows = await session.scalars(
        select(employments.c.person_id).where(
            employments.c.organization_id == organization_id,
            employments.c.person_id.in_(person_ids),
            ~employments.c.deleted,
        )
    )
    return set(rows.all())


async def candidate_clients(
    session: AsyncSession, principal: Principal, person_ids: list[Any]
) -> list[ClientCard]:
    """The clients where the matched persons work, that the caller may write about."""
    if not person_ids:
        return []
    stmt = (
        select(client_cards)
        .join(employments, employments.c.organization_id == client_cards.c.organization_id)
        .where(
            employments.c.person_id.in_(person_ids),
            ~employments.c.deleted,
            visible_to(principal, client_cards.c.directions),
        )
        .distinct()
    )
    cards = [
        ClientCard.model_validate(row, from_attributes=True)
        for row in (await session.execute(stmt)).all()
    ]
    if principal.is_service or principal.has_role(Role.ADMIN):
        return cards
    return [c for c in cards if not principal.directions.isdisjoint(c.directions)]


def _unreadable(detail: str) -> ProblemError:
    return ProblemError(422, "Unreadable Message", detail, kind="unreadable-message")


@router.post("", status_code=status.HTTP_201_CREATED)
async def capture_email(
    file: Annotated[UploadFile, File(description="an .eml or Outlook .msg file")],
    principal: Writer,
    runtime: Runtime,
    settings: Settings,
    clock: ClockDep,
    request: Request,
    response: Response,
    organization_id: Annotated[uuid.UUID | None, Form()] = None,
    responsible_employee_id: Annotated[uuid.UUID | None, Form()] = None,
) -> CapturedEmail:
    """Log an e-mail from its file. Sender and recipients are matched to persons by address;
    the client is ``organization_id`` or, when omitted, the one client where the matched persons
    work (422 when there is none or several). A message from an employee or one of
    ``OWN_EMAIL_DOMAINS`` is outgoing, any other incoming; the responsible employee is
    ``responsible_employee_id`` or the first employee among the addresses. Attachments are
    stored under the usual checks; those refused are listed in ``skipped_attachments``. Unknown
    addresses are reported for the user to link or create. The same message (Message-ID) is
    captured once per client (409)."""
    data = await read_upload(file, settings.email_max_bytes)
    try:
        message: CapturedMessage = parse_message(file.filename, data)
    except UnreadableMessage as exc:
        raise _unreadable(str(exc)) from None
    now = clock.now()
    storage = storage_of(request)
    actor = actor_of(principal)
    written: list[str] = []
    try:
        async with runtime.sessions() as session, session.begin():
            known = await persons_by_address(session, message.addresses())
            staff = await employees_by_address(session, message.addresses())
            everyone = list({p for ids in known.values() for p in ids})
            if organization_id is not None:
                card = await writable_card(session, principal, organization_id)
            else:
                candidates = await candidate_clients(session, principal, everyone)
                if len(candidates) != 1:
                    raise ProblemError(
                        422,
                        "Client Not Determined",
                        "Pass organization_id: the message's persons work at "
                        + (
                            "no client you may write about."
                            if not candidates
                            else "several clients."
                        ),
                        kind="client-not-determined",
                        candidates=[str(c.organization_id) for c in candidates],
                        unknown_addresses=match_addresses(
                            message,
                            known,
                            settings.own_email_domains,
                            employees_by_address=staff,
                        ).unknown,
                    )
                card = candidates[0]
            matching = match_addresses(
                message,
                known,
                settings.own_email_domains,
                preferred=await employed_at(session, card.organization_id, everyone),
                employees_by_address=staff,
            )
            if message.message_id:
                existing = await session.scalar(
                    select(interactions.c.id).where(
                        interactions.c.organization_id == card.organization_id,
                        interactions.c.message_id == message.message_id,
                    )
                )
                if existing is not None:
                    raise Conflict(
                        "This message was captured for the client already.",
                        interaction_id=str(existing),
                    )
            occurred = message.sent_at if message.sent_at and message.sent_at <= now else now
            interaction = await insert_interaction(
                session,
                {
                    "organization_id": card.organization_id,
                    "kind": "email",
                    "direction": matching.direction,
                    "status": "done",
                    "occurred_at": occurred,
                    "person_ids": matching.person_ids,
                    "responsible_employee_id": responsible_employee_id or matching.employee_id,
                    "subject": (message.subject or "(no subject)")[:500],
                    "notes": message.body or None,
                },
                created_by=principal.subject,
                source=message.format,
                message_id=message.message_id,
            )
            await audit(
                session,
                actor,
                interaction_id=interaction.id,
                action="logged",
                version=1,
                changes=created_changes(interaction),
                note=f"captured from {file.filename or 'an uploaded file'}"[:500],
            )
            stored: list[Attachment] = []
            skipped: list[SkippedAttachment] = []
            for item in message.attachments:
                name = safe_filename(item.filename)
                try:
                    content_type = check_attachment(
                        item.data,
                        item.content_type,
                        max_bytes=settings.attachment_max_bytes,
                        allowed=settings.attachment_content_types,
                    )
                except AttachmentRefused as exc:
                    skipped.append(SkippedAttachment(filename=name, reason=exc.detail))
                    continue
                stored.append(
                    await add_attachment(
                        session,
                        storage,
                        interaction.id,
                        filename=name,
                        content_type=content_type,
                        data=item.data,
                        actor=actor,
                        written=written,
                    )
                )
            publisher = Publisher(runtime.outbox, card.directions, actor)
            await runtime.outbox.add(session, publisher.created(interaction))
            await bump_summary(session, card.organization_id)
    except BaseException:
        await discard(storage, written)
        raise
    response.headers["ETag"] = etag(interaction.version)
    response.headers["Location"] = f"/v1/interactions/{interaction.id}"
    return CapturedEmail(
        interaction=interaction,
        attachments=stored,
        matched=[AddressMatch(address=a, person_id=p) for a, p in matching.matched.items()],
        unknown_addresses=matching.unknown,
        skipped_attachments=skipped,
    )
