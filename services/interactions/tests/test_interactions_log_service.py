"""The contact log, attachments and e-mail capture through their service functions against real
PostgreSQL (no HTTP, no Kafka): what each operation writes (rows, audit trail, outbox) in one
transaction, and what it refuses without writing anything."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from clientele_interactions.attachments import service as attachments
from clientele_interactions.capture import service as capture
from clientele_interactions.capture.parsing import parse_message
from clientele_interactions.capture.rules import AlreadyCaptured
from clientele_interactions.clients.readmodels import on_employee_event
from clientele_interactions.log import service as log
from clientele_interactions.log.rules import StateConflict
from clientele_interactions.log.schemas import (
    CancelRequest,
    CompleteRequest,
    InteractionDraft,
    InteractionPatch,
    NextContact,
)
from clientele_interactions.settings import InteractionsSettings
from clientele_interactions.tables import client_cards, outbox, persons
from clientele_shared.auth.principal import Principal
from clientele_shared.events.envelope import Envelope
from clientele_shared.events.schemas.directory import EmployeeCreated
from clientele_shared.http.concurrency import PreconditionFailed
from clientele_shared.http.problems import NotFound
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.storage import LocalDiskStorage, check_attachment
from sqlalchemy import insert, select

pytestmark = pytest.mark.integration

LEAD = timedelta(minutes=30)
NOW = datetime.now(UTC).replace(microsecond=0)


class North:
    """A client of a fresh direction, an employee and a salesperson of it, one outsider."""

    def __init__(self) -> None:
        self.direction = f"d{uuid.uuid4().hex[:10]}"
        self.organization_id = uuid.uuid4()
        self.employee_id = uuid.uuid4()
        self.person_id = uuid.uuid4()
        self.sales = Principal(
            subject=str(self.employee_id),
            roles=frozenset({"sales"}),
            directions=frozenset({self.direction}),
        )
        self.outsider = Principal(
            subject="outsider", roles=frozenset({"sales"}), directions=frozenset({"elsewhere"})
        )

    def draft(self, **values: object) -> InteractionDraft:
        return InteractionDraft.model_validate(
            {
                "organization_id": self.organization_id,
                "kind": "call",
                "direction": "out",
                "subject": "Договор поставки",
                "status": "planned",
                "due_at": NOW + timedelta(days=1),
                "responsible_employee_id": self.employee_id,
                **values,
            }
        )


@pytest.fixture
async def north(runtime: ServiceRuntime) -> North:
    north = North()
    async with runtime.sessions() as session, session.begin():
        await session.execute(
            insert(client_cards).values(
                organization_id=north.organization_id,
                legal_name="ООО Ромашка",
                status="active",
                directions=[north.direction],
                version=1,
            )
        )
        await session.execute(
            insert(persons).values(
                person_id=north.person_id,
                last_name="Петров",
                first_name="Иван",
                emails=["ivan@romashka.example"],
                directions=[north.direction],
                version=1,
            )
        )
        await on_employee_event(
            session,
            Envelope.model_construct(),
            EmployeeCreated(
                employee_id=north.employee_id,
                name="Анна",
                email=f"anna-{north.employee_id.hex[:8]}@example.com",
                roles=["sales"],
                directions=[north.direction],
                active=True,
                version=1,
            ),
        )
    return north


def stored_files(root: Path) -> list[Path]:
    return [path for path in root.rglob("*") if path.is_file()]


async def events_of(runtime: ServiceRuntime, aggregate_id: uuid.UUID) -> list[str]:
    async with runtime.sessions() as session:
        rows = await session.scalars(
            select(outbox.c.event_type)
            .where(outbox.c.key == str(aggregate_id))
            .order_by(outbox.c.id)
        )
        return list(rows.all())


async def test_a_contact_is_planned_rescheduled_completed_with_the_next_and_audited(
    runtime: ServiceRuntime, north: North
) -> None:
    planned = await log.log_interaction(
        runtime=runtime, principal=north.sales, draft=north.draft(), now=NOW, reminder_lead=LEAD
    )
    contact = planned.interaction
    assert (contact.status, contact.version, planned.next_planned) == ("planned", 1, None)
    later = NOW + timedelta(days=2)
    with pytest.raises(PreconditionFailed):  # a stale version changes nothing
        await log.change_interaction(
            runtime=runtime,
            principal=north.sales,
            interaction_id=contact.id,
            patch=InteractionPatch(due_at=later),
            expected={7},
            now=NOW,
            reminder_lead=LEAD,
        )
    moved = await log.change_interaction(
        runtime=runtime,
        principal=north.sales,
        interaction_id=contact.id,
        patch=InteractionPatch(due_at=later),
        expected={1},
        now=NOW,
        reminder_lead=LEAD,
    )
    assert (moved.version, moved.due_at) == (2, later)
    done = await log.complete_interaction(
        runtime=runtime,
        principal=north.sales,
        interaction_id=contact.id,
        request=CompleteRequest(next=NextContact(due_at=NOW + timedelta(days=7))),
        expected={2},
        now=NOW,
        reminder_lead=LEAD,
    )
    assert (done.interaction.status, done.interaction.version) == ("done", 3)
    assert done.next_planned is not None
    assert done.next_planned.status == "planned"
    trail = await log.audit_trail(
        runtime=runtime, principal=north.sales, interaction_id=contact.id, after=0, limit=10
    )
    assert [(e.action, e.version, e.actor_subject) for e in trail] == [
        ("planned", 1, north.sales.subject),
        ("rescheduled", 2, north.sales.subject),
        ("completed", 3, north.sales.subject),
    ]
    assert await events_of(runtime, contact.id) == [
        "interactions.interaction.planned",
        "interactions.reminder.scheduled",
        "interactions.interaction.rescheduled",
        "interactions.reminder.scheduled",
        "interactions.interaction.completed",
        "interactions.reminder.cancelled",
    ]
    assert await events_of(runtime, done.next_planned.id) == [
        "interactions.interaction.planned",
        "interactions.reminder.scheduled",
    ]
    with pytest.raises(StateConflict):  # only a planned contact is cancelled
        await log.cancel_interaction(
            runtime=runtime,
            principal=north.sales,
            interaction_id=contact.id,
            request=CancelRequest(reason="не нужно"),
            expected={3},
            now=NOW,
            reminder_lead=LEAD,
        )
    assert len(await events_of(runtime, contact.id)) == 6


async def test_another_direction_sees_nothing_and_writes_nothing(
    runtime: ServiceRuntime, north: North
) -> None:
    with pytest.raises(NotFound):
        await log.log_interaction(
            runtime=runtime,
            principal=north.outsider,
            draft=north.draft(),
            now=NOW,
            reminder_lead=LEAD,
        )
    mine = await log.log_interaction(
        runtime=runtime, principal=north.sales, draft=north.draft(), now=NOW, reminder_lead=LEAD
    )
    with pytest.raises(NotFound):
        await log.get_interaction(
            runtime=runtime, principal=north.outsider, interaction_id=mine.interaction.id
        )
    listed = await log.list_interactions(
        runtime=runtime,
        principal=north.outsider,
        organization_id=None,
        status=None,
        kind=None,
        responsible_employee_id=north.employee_id,
        overdue=None,
        since=None,
        until=None,
        order="recent",
        limit=50,
        offset=0,
        now=NOW,
    )
    assert listed == []


async def test_a_contact_past_due_is_marked_overdue_once(
    runtime: ServiceRuntime, north: North
) -> None:
    planned = await log.log_interaction(
        runtime=runtime, principal=north.sales, draft=north.draft(), now=NOW, reminder_lead=LEAD
    )
    contact_id = planned.interaction.id
    long_after = NOW + timedelta(days=400)  # past every contact planned before in this database
    while await log.mark_overdue(
        sessions=runtime.sessions, outbox=runtime.outbox, now=long_after, batch=500
    ):
        pass
    got = await log.get_interaction(
        runtime=runtime, principal=north.sales, interaction_id=contact_id
    )
    assert got.overdue_at == long_after
    events = await events_of(runtime, contact_id)
    assert events[:3] == [
        "interactions.interaction.planned",
        "interactions.reminder.scheduled",
        "interactions.interaction.overdue",
    ]
    assert events[3:] == ["interactions.notification.requested"]  # the employee is told once
    trail = await log.audit_trail(
        runtime=runtime, principal=north.sales, interaction_id=contact_id, after=0, limit=10
    )
    assert [(e.action, e.actor_subject) for e in trail][-1] == ("overdue", "interactions")


async def test_an_attachment_is_stored_recorded_read_and_removed(
    runtime: ServiceRuntime, north: North, tmp_path: Path
) -> None:
    storage = LocalDiskStorage(tmp_path)
    done = await log.log_interaction(
        runtime=runtime,
        principal=north.sales,
        draft=north.draft(status="done", due_at=None, occurred_at=NOW - timedelta(hours=1)),
        now=NOW,
        reminder_lead=LEAD,
    )
    interaction_id = done.interaction.id
    upload = check_attachment(
        b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n",
        "application/pdf",
        max_bytes=1_000_000,
        allowed=["application/pdf"],
    )
    with pytest.raises(NotFound):  # nothing is stored for whom may not see the interaction
        await attachments.upload_attachment(
            runtime=runtime,
            storage=storage,
            principal=north.outsider,
            interaction_id=interaction_id,
            filename="offer.pdf",
            upload=upload,
        )
    assert stored_files(tmp_path) == []
    stored = await attachments.upload_attachment(
        runtime=runtime,
        storage=storage,
        principal=north.sales,
        interaction_id=interaction_id,
        filename="offer.pdf",
        upload=upload,
    )
    listed = await attachments.list_attachments(
        runtime=runtime, principal=north.sales, interaction_id=interaction_id
    )
    assert [a.id for a in listed] == [stored.id]
    download = await attachments.download_attachment(
        runtime=runtime,
        storage=storage,
        principal=north.sales,
        interaction_id=interaction_id,
        attachment_id=stored.id,
    )
    assert b"".join([chunk async for chunk in download.chunks]).startswith(b"%PDF-1.4")
    await attachments.delete_attachment(
        runtime=runtime,
        storage=storage,
        principal=north.sales,
        interaction_id=interaction_id,
        attachment_id=stored.id,
    )
    with pytest.raises(NotFound):
        await attachments.delete_attachment(
            runtime=runtime,
            storage=storage,
            principal=north.sales,
            interaction_id=interaction_id,
            attachment_id=stored.id,
        )
    assert stored_files(tmp_path) == []
    trail = await log.audit_trail(
        runtime=runtime, principal=north.sales, interaction_id=interaction_id, after=0, limit=10
    )
    assert [e.action for e in trail] == ["logged", "attachment_added", "attachment_removed"]


async def test_a_message_is_captured_once_with_its_unknown_addresses_kept(
    runtime: ServiceRuntime, north: North, tmp_path: Path
) -> None:
    message_id = f"<{uuid.uuid4().hex}@romashka.example>"
    raw = (
        "From: Иван Петров <ivan@romashka.example>\r\n"
        f"To: anna-{north.employee_id.hex[:8]}@example.com, stranger@elsewhere.example\r\n"
        "Subject: =?utf-8?b?0JTQvtCz0L7QstC+0YA=?=\r\n"
        f"Message-ID: {message_id}\r\n"
        "Date: Mon, 2 Mar 2026 09:00:00 +0300\r\n"
        "Content-Type: text/plain; charset=utf-8\r\n\r\n"
        "Добрый день!\r\n"
    ).encode()
    message = parse_message("mail.eml", raw)
    settings = runtime.settings
    assert isinstance(settings, InteractionsSettings)
    storage = LocalDiskStorage(tmp_path)
    captured = await capture.capture_message(
        runtime=runtime,
        storage=storage,
        settings=settings,
        principal=north.sales,
        message=message,
        now=NOW,
        origin="a test",
        organization_id=north.organization_id,
    )
    interaction = captured.interaction
    assert (interaction.kind, interaction.direction, interaction.status) == ("email", "in", "done")
    assert interaction.person_ids == [north.person_id]
    assert interaction.responsible_employee_id == north.employee_id
    assert [u.address for u in captured.unmatched] == ["stranger@elsewhere.example"]
    assert await events_of(runtime, interaction.id) == ["interactions.interaction.logged"]
    with pytest.raises(AlreadyCaptured):
        await capture.capture_message(
            runtime=runtime,
            storage=storage,
            settings=settings,
            principal=north.sales,
            message=message,
            now=NOW,
            origin="a test",
            organization_id=north.organization_id,
        )
    trail = await log.audit_trail(
        runtime=runtime, principal=north.sales, interaction_id=interaction.id, after=0, limit=10
    )
    assert [(e.action, e.note) for e in trail] == [("logged", "captured from a test")]
