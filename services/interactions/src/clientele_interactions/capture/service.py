"""E-mail capture operations: one parsed message becomes an interaction on its client, with
attachments.

The one path behind the upload endpoint (``POST /v1/interactions/email``) and the IMAP poller:
the same address matching, the same dedup by Message-ID per client, the same events.
"""

from __future__ import annotations

import asyncio
import functools
import multiprocessing
import uuid
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from datetime import datetime
from typing import Any

from clientele_shared.auth.principal import Principal, Role
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import unit_of_work
from clientele_shared.storage import (
    AttachmentRefused,
    AttachmentStorage,
    check_attachment,
    safe_filename,
)
from clientele_shared.worker_processes import end_with_parent
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_interactions.attachments.rules import Attachment
from clientele_interactions.attachments.service import discard, record_attachment, store_blob
from clientele_interactions.capture import queries
from clientele_interactions.capture.parsing import (
    CapturedMessage,
    ParseLimits,
    UnreadableMessage,
    parse_message,
)
from clientele_interactions.capture.rules import (
    AddressMatch,
    AlreadyCaptured,
    CapturedEmail,
    ClientNotDetermined,
    SkippedAttachment,
    match_addresses,
    occurred_at,
)
from clientele_interactions.clients.rules import ClientCard
from clientele_interactions.log.queries import (
    blocked_among,
    bump_summary,
    check_employee,
    insert_interaction,
)
from clientele_interactions.log.rules import created_changes, refuse_blocked
from clientele_interactions.publishing import Publisher
from clientele_interactions.settings import InteractionsSettings
from clientele_interactions.tables import interaction_audit
from clientele_interactions.unmatched.rules import UnmatchedAddress
from clientele_interactions.unmatched.service import keep_unknown
from clientele_interactions.visibility import writable_card


@functools.cache
def _parsers(workers: int) -> ProcessPoolExecutor:
    """The worker processes that parse message files (spawned: a fork of a process running an
    event loop and threads is unsafe); each ends when the service process is gone."""
    return ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=end_with_parent
    )


async def read_message(
    settings: InteractionsSettings, filename: str | None, data: bytes
) -> CapturedMessage:
    """Parse a message file in a worker process (parsing is CPU work: the event loop keeps
    serving, not even sharing the interpreter lock), within the settings' bounds
    (UnreadableMessage beyond them; also when the file made its worker die)."""
    limits = ParseLimits(
        max_parts=settings.email_max_parts,
        max_recipients=settings.email_max_recipients,
        max_depth=settings.email_max_depth,
    )
    pool = _parsers(settings.email_parse_workers)
    try:
        return await asyncio.get_running_loop().run_in_executor(
            pool, parse_message, filename, data, limits
        )
    except BrokenProcessPool:
        _parsers.cache_clear()  # the next file gets new workers
        pool.shutdown(wait=False, cancel_futures=True)
        raise UnreadableMessage("the file could not be read: its parser ended") from None


async def candidate_clients(
    session: AsyncSession, principal: Principal, person_ids: list[Any]
) -> list[ClientCard]:
    """The clients where the matched persons work, that the caller may write about."""
    cards = await queries.cards_employing(session, principal, person_ids)
    if principal.is_service or principal.has_role(Role.ADMIN):
        return cards
    return [c for c in cards if not principal.directions.isdisjoint(c.directions)]


async def record_uncaptured(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    message: CapturedMessage,
    refused: ClientNotDetermined,
    mailbox: str,
) -> list[UnmatchedAddress]:
    """Keep the unknown addresses of mailbox mail that found no client (a repeated poll of the
    same message adds nothing: one record per mailbox, Message-ID and address)."""
    async with unit_of_work(runtime.sessions, runtime.outbox, interaction_audit, principal) as uow:
        return await keep_unknown(
            uow.session,
            principal,
            message,
            refused.unknown_addresses,
            interaction_id=None,
            candidates=refused.candidates,
            mailbox=mailbox,
        )


def _violates(exc: IntegrityError, constraint: str) -> bool:
    """Whether the database refused a write for the unique index or constraint ``constraint``."""
    cause = getattr(exc.orig, "__cause__", None)
    return getattr(cause, "constraint_name", None) == constraint or constraint in str(exc.orig)


async def capture_message(
    *,
    runtime: ServiceRuntime,
    storage: AttachmentStorage,
    settings: InteractionsSettings,
    principal: Principal,
    message: CapturedMessage,
    now: datetime,
    origin: str,
    organization_id: uuid.UUID | None = None,
    responsible_employee_id: uuid.UUID | None = None,
    default_employee_id: uuid.UUID | None = None,
    mailbox: str | None = None,
) -> CapturedEmail:
    """Log ``message`` as an e-mail interaction in one transaction (interaction, audit entry,
    attachments, ``interaction.created`` in the outbox); outgoing mail with a blocked
    counterparty is refused (CounterpartyBlocked), incoming mail is logged. ``origin`` names
    where it came from (the audit note). The responsible employee is
    ``responsible_employee_id``, else the first employee among the addresses, else
    ``default_employee_id``. Unknown addresses are kept as unmatched records (``mailbox``: where
    the mail came from, none for an upload). Raises ClientNotDetermined,
    AlreadyCaptured, or the card's access errors; attachment bytes written before a failure
    are removed."""
    written: list[str] = []
    key = message.dedup_key()
    try:
        async with unit_of_work(
            runtime.sessions, runtime.outbox, interaction_audit, principal
        ) as uow:
            session = uow.session
            known = await queries.persons_by_address(session, principal, message.addresses())
            staff = await queries.employees_by_address(session, principal, message.addresses())
            everyone = list({p for ids in known.values() for p in ids})
            if responsible_employee_id is not None:
                await check_employee(
                    session, principal, responsible_employee_id, field="responsible_employee_id"
                )
            if organization_id is not None:
                card = await writable_card(session, principal, organization_id)
            else:
                candidates = await candidate_clients(session, principal, everyone)
                if len(candidates) != 1:
                    raise ClientNotDetermined(
                        candidates,
                        match_addresses(
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
                preferred=await queries.employed_at(session, card.organization_id, everyone),
                employees_by_address=staff,
            )
            refuse_blocked(
                status="done",
                direction=matching.direction,
                organization_id=card.organization_id,
                organization_blocked=card.blocked,
                blocked_person_ids=await blocked_among(session, matching.person_ids),
            )
            existing = await queries.captured_before(session, card.organization_id, key)
            if existing is not None:
                raise AlreadyCaptured(existing)
            occurred = occurred_at(message, now)
            interaction = await insert_interaction(
                session,
                {
                    "organization_id": card.organization_id,
                    "kind": message.kind,
                    "direction": matching.direction,
                    "status": "done",
                    "occurred_at": occurred,
                    "person_ids": matching.person_ids,
                    "responsible_employee_id": responsible_employee_id
                    or matching.employee_id
                    or default_employee_id,
                    "subject": (message.subject or "(no subject)")[:500],
                    "notes": message.body or None,
                },
                created_by=principal.subject,
                source=message.format,
                message_id=key,
            )
            await uow.audit(
                kind="interaction",
                entity_id=interaction.id,
                action="logged",
                version=1,
                changes=created_changes(interaction),
                note=f"captured from {origin}"[:500],
            )
            stored: list[Attachment] = []
            skipped: list[SkippedAttachment] = []
            for item in message.attachments:
                name = safe_filename(item.filename)
                if item.refused is not None:
                    skipped.append(SkippedAttachment(filename=name, reason=item.refused))
                    continue
                try:
                    upload = check_attachment(
                        item.data,
                        item.content_type,
                        max_bytes=settings.attachment_max_bytes,
                        allowed=settings.attachment_content_types,
                        filename=item.filename,
                    )
                except AttachmentRefused as exc:
                    skipped.append(SkippedAttachment(filename=name, reason=exc.detail))
                    continue
                blob = await store_blob(storage, interaction.id, upload, written)
                stored.append(
                    await record_attachment(uow, interaction.id, blob, filename=name, upload=upload)
                )
            unmatched = await keep_unknown(
                session,
                principal,
                message,
                matching.unknown,
                interaction_id=interaction.id,
                organization_id=card.organization_id,
                mailbox=mailbox,
            )
            publisher = Publisher(runtime.outbox, card.directions, uow.actor)
            uow.stage(publisher.created(interaction))
            await bump_summary(session, card.organization_id)
    except IntegrityError as exc:
        await discard(storage, written)
        if not _violates(exc, "ux_interactions_message"):
            raise
        # a concurrent capture of the same message committed first: answer as it would have
        async with runtime.sessions() as session:
            existing = await queries.captured_before(session, card.organization_id, key)
        if existing is None:
            raise
        raise AlreadyCaptured(existing) from None
    except BaseException:
        await discard(storage, written)
        raise
    return CapturedEmail(
        interaction=interaction,
        attachments=stored,
        matched=[AddressMatch(address=a, person_id=p) for a, p in matching.matched.items()],
        unknown_addresses=matching.unknown,
        unmatched=unmatched,
        skipped_attachments=skipped,
    )
