"""Attaching the ERP's documents to deals and clients, and showing them on a deal."""

from __future__ import annotations

import uuid

from clientele_shared.auth.access import ensure_visible
from clientele_shared.auth.principal import Principal
from clientele_shared.directory_read_models import OrganizationRecord
from clientele_shared.events.schemas.erp import ErpDocument, InvoiceIssued, PaymentReceived
from clientele_shared.http.problems import NotFound
from clientele_shared.observability import get_logger
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import UnitOfWork
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_pipeline import publishing
from clientele_pipeline.clients import service as clients
from clientele_pipeline.deals import queries as deal_queries
from clientele_pipeline.deals import service as deals
from clientele_pipeline.deals.rules import Deal
from clientele_pipeline.documents import queries
from clientele_pipeline.documents.rules import (
    Document,
    DocumentKind,
    DocumentRejected,
    stored_values,
)

MAX_MERGES = 10
log = get_logger(__name__)


async def _survivor(session: AsyncSession, organization_id: uuid.UUID) -> OrganizationRecord:
    """The client, or the one it was merged into (a merge chain followed to its end)."""
    client = await clients.organization(session, organization_id)
    for _ in range(MAX_MERGES):
        if client is None or client.merged_into is None:
            break
        client = await clients.organization(session, client.merged_into)
    if client is None or client.merged_into is not None:
        raise DocumentRejected(f"no organization {organization_id} in the directory")
    return client


async def _by_inn(session: AsyncSession, inn: str) -> OrganizationRecord:
    found = await queries.organizations_with_inn(session, inn)
    if not found:
        raise DocumentRejected(f"no organization with INN {inn} in the directory")
    if len(found) > 1:
        ids = ", ".join(str(org) for org in found)
        raise DocumentRejected(f"INN {inn} matches several organizations ({ids}): send its id")
    return await _survivor(session, found[0])


async def _resolve(
    session: AsyncSession, document: ErpDocument
) -> tuple[Deal | None, OrganizationRecord]:
    """The deal and the client a document is about, by the ids it names, else by INN; every
    reference it gives must agree with the others."""
    deal = None
    if document.deal_id is not None:
        found = await deal_queries.load(session, document.deal_id)
        if found is None:
            raise DocumentRejected(f"no deal {document.deal_id}")
        deal = found[0]
    if document.organization_id is not None:
        client = await _survivor(session, document.organization_id)
    elif deal is not None:
        client = await _survivor(session, deal.organization_id)
    else:
        assert document.inn is not None  # the schema wants one of the three
        client = await _by_inn(session, document.inn)
    if deal is not None and deal.organization_id != client.organization_id:
        raise DocumentRejected(
            f"deal {deal.id} is with organization {deal.organization_id}, "
            f"not {client.organization_id}"
        )
    if document.inn is not None and client.inn is not None and document.inn != client.inn:
        raise DocumentRejected(
            f"INN {document.inn} is not organization {client.organization_id}'s ({client.inn})"
        )
    return deal, client


async def attach(
    uow: UnitOfWork, kind: DocumentKind, document: ErpDocument, event_id: uuid.UUID
) -> None:
    """Keep the document with its deal and client (a correction replaces it), and announce a
    new payment or invoice on a deal (``pipeline.deal.payment_received``,
    ``.invoice_received``). Raises ``DocumentRejected``."""
    deal, client = await _resolve(uow.session, document)
    directions = deal.directions if deal is not None else client.directions
    inserted = await queries.upsert(
        uow.session,
        {
            **stored_values(kind, document),
            "deal_id": deal.id if deal is not None else None,
            "organization_id": client.organization_id,
            "directions": directions,
            "event_id": event_id,
        },
    )
    log.info(
        "erp document attached",
        kind=kind,
        document_id=document.document_id,
        deal_id=str(deal.id) if deal else None,
        organization_id=str(client.organization_id),
        correction=not inserted,
    )
    if inserted and deal is not None and isinstance(document, PaymentReceived):
        uow.stage(publishing.deal_payment_received(uow.outbox, deal, document, uow.actor))
    if inserted and deal is not None and isinstance(document, InvoiceIssued):
        uow.stage(publishing.deal_invoice_received(uow.outbox, deal, document, uow.actor))


async def deal_documents(
    *, runtime: ServiceRuntime, principal: Principal, deal_id: uuid.UUID
) -> list[Document]:
    """The ERP's documents of a deal the caller sees (404 otherwise), by date."""
    async with runtime.sessions() as session:
        await deals.visible_deal(session, principal, deal_id, deleted=None)
        return await queries.of_deal(session, deal_id)


async def organization_documents(
    *, runtime: ServiceRuntime, principal: Principal, organization_id: uuid.UUID
) -> list[Document]:
    """The ERP's documents of a client the caller sees (404 otherwise: unknown, deleted or of
    other directions), with or without a deal, by date."""
    async with runtime.sessions() as session:
        client = await clients.organization(session, organization_id)
        if client is None or client.deleted:
            raise NotFound("The organization does not exist.")
        ensure_visible(principal, client.directions, "The organization does not exist.")
        return await queries.of_organization(session, principal, organization_id)
