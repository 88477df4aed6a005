"""Events out: each outgoing event built from the domain model (staged by the service layer)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.erp import InvoiceIssued, PaymentReceived
from clientele_shared.events.schemas.leads import (
    LEAD_ASSIGNED,
    LEAD_CONVERTED,
    LEAD_RECEIVED,
    LEAD_REJECTED,
    LeadAssigned,
    LeadConverted,
    LeadReceived,
    LeadRejected,
)
from clientele_shared.events.schemas.notifications import (
    Channel,
    NotificationRequested,
    Recipient,
    ReminderCancelled,
    ReminderScheduled,
    notification_requested,
    reminder_cancelled,
    reminder_scheduled,
)
from clientele_shared.events.schemas.pipeline import (
    DEAL_CHANGED,
    DEAL_CREATED,
    DEAL_DELETED,
    DEAL_INVOICE_RECEIVED,
    DEAL_LOST,
    DEAL_PAYMENT_RECEIVED,
    DEAL_RESTORED,
    DEAL_STAGE_CHANGED,
    DEAL_WON,
    DealChanged,
    DealCreated,
    DealDeleted,
    DealInvoiceReceived,
    DealLost,
    DealPaymentReceived,
    DealRestored,
    DealStageChanged,
    DealWon,
)
from clientele_shared.events.schemas.tasks import (
    TASK_CHANGED,
    TASK_COMPLETED,
    TASK_CREATED,
    TASK_OVERDUE,
    TASK_REASSIGNED,
    TaskChanged,
    TaskCompleted,
    TaskCreated,
    TaskOverdue,
    TaskReassigned,
)
from clientele_shared.events.topics import PIPELINE

from clientele_pipeline.deals.rules import Deal
from clientele_pipeline.leads.rules import Lead
from clientele_pipeline.pipelines.rules import Stage
from clientele_pipeline.tasks.rules import Task, overdue_key, reminder_id, reminder_time


def _snapshot(deal: Deal, stage: Stage) -> dict[str, Any]:
    values = deal.model_dump(
        mode="json",
        include={
            "version",
            "pipeline_id",
            "stage_id",
            "status",
            "organization_id",
            "title",
            "amount",
            "currency",
            "person_ids",
            "primary_person_id",
            "responsible_employee_id",
            "directions",
            "tags",
            "custom_fields",
            "expected_close_date",
            "source",
            "lost_reason",
            "products",
            "amount_from_products",
        },
    )
    return {**values, "deal_id": str(deal.id), "stage_name": stage.name, "stage_kind": stage.kind}


def deal_created(outbox: Outbox, deal: Deal, stage: Stage, actor: Actor) -> Envelope:
    return outbox.envelope(
        DEAL_CREATED,
        DealCreated.model_validate(_snapshot(deal, stage)),
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )


def deal_restored(outbox: Outbox, deal: Deal, stage: Stage, actor: Actor) -> Envelope:
    return outbox.envelope(
        DEAL_RESTORED,
        DealRestored.model_validate(_snapshot(deal, stage)),
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )


def deal_changed(
    outbox: Outbox,
    deal: Deal,
    changes: dict[str, dict[str, Any]],
    actor: Actor,
    *,
    previous_directions: Sequence[str] = (),
) -> Envelope:
    """Only the changed fields, old and new; a deal that left directions is announced to the
    old ones too (the union)."""
    payload = DealChanged(
        deal_id=deal.id,
        version=deal.version,
        organization_id=deal.organization_id,
        pipeline_id=deal.pipeline_id,
        changes={name: FieldChange(**change) for name, change in changes.items()},
    )
    return outbox.envelope(
        DEAL_CHANGED,
        payload,
        aggregate_id=str(deal.id),
        directions=sorted({*deal.directions, *previous_directions}),
        actor=actor,
    )


def deal_moved(
    outbox: Outbox,
    deal: Deal,
    *,
    from_stage_id: uuid.UUID,
    stage: Stage,
    reason: str | None,
    moved_at: datetime,
    actor: Actor,
) -> list[Envelope]:
    """The stage change, and the deal's winning or loss when the stage closes it."""
    common = {
        "deal_id": deal.id,
        "version": deal.version,
        "organization_id": deal.organization_id,
        "pipeline_id": deal.pipeline_id,
    }
    money = {"amount": deal.amount, "currency": deal.currency}
    envelopes = [
        outbox.envelope(
            DEAL_STAGE_CHANGED,
            DealStageChanged(
                **common,
                **money,
                from_stage_id=from_stage_id,
                to_stage_id=stage.id,
                stage_name=stage.name,
                stage_kind=stage.kind,
                status=deal.status,
                reason=reason,
                moved_at=moved_at,
                title=deal.title,
            ),
            aggregate_id=str(deal.id),
            directions=deal.directions,
            actor=actor,
        )
    ]
    closed = {
        **common,
        **money,
        "stage_id": stage.id,
        "responsible_employee_id": deal.responsible_employee_id,
        "closed_at": moved_at,
    }
    if deal.status == "won":
        envelopes.append(
            outbox.envelope(
                DEAL_WON,
                DealWon(**closed),
                aggregate_id=str(deal.id),
                directions=deal.directions,
                actor=actor,
            )
        )
    elif deal.status == "lost":
        assert deal.lost_reason is not None
        envelopes.append(
            outbox.envelope(
                DEAL_LOST,
                DealLost(**closed, lost_reason=deal.lost_reason),
                aggregate_id=str(deal.id),
                directions=deal.directions,
                actor=actor,
            )
        )
    return envelopes


def deal_deleted(outbox: Outbox, deal: Deal, actor: Actor) -> Envelope:
    return outbox.envelope(
        DEAL_DELETED,
        DealDeleted(deal_id=deal.id, version=deal.version, organization_id=deal.organization_id),
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )


def deal_invoice_received(
    outbox: Outbox, deal: Deal, invoice: InvoiceIssued, actor: Actor
) -> Envelope:
    """An invoice the ERP issued, attached to the deal (for automation)."""
    payload = DealInvoiceReceived(
        deal_id=deal.id,
        organization_id=deal.organization_id,
        pipeline_id=deal.pipeline_id,
        document_id=invoice.document_id,
        number=invoice.number,
        date=invoice.date,
        due_date=invoice.due_date,
        amount=invoice.amount,
        currency=invoice.currency,
    )
    return outbox.envelope(
        DEAL_INVOICE_RECEIVED,
        payload,
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )


def deal_payment_received(
    outbox: Outbox, deal: Deal, payment: PaymentReceived, actor: Actor
) -> Envelope:
    """A payment the ERP reported, attached to the deal (for automation and the summary)."""
    payload = DealPaymentReceived(
        deal_id=deal.id,
        organization_id=deal.organization_id,
        pipeline_id=deal.pipeline_id,
        document_id=payment.document_id,
        invoice_id=payment.invoice_id,
        number=payment.number,
        date=payment.date,
        amount=payment.amount,
        currency=payment.currency,
        paid_at=payment.paid_at,
    )
    return outbox.envelope(
        DEAL_PAYMENT_RECEIVED,
        payload,
        aggregate_id=str(deal.id),
        directions=deal.directions,
        actor=actor,
    )


# --- tasks ------------------------------------------------------------------------------------


def _task_event(
    outbox: Outbox, event_type: str, payload: Any, task: Task, actor: Actor
) -> Envelope:
    return outbox.envelope(
        event_type, payload, aggregate_id=str(task.id), directions=task.directions, actor=actor
    )


def _links(task: Task) -> dict[str, Any]:
    return {
        "task_id": task.id,
        "version": task.version,
        "deal_id": task.deal_id,
        "organization_id": task.organization_id,
    }


def task_created(outbox: Outbox, task: Task, actor: Actor) -> Envelope:
    payload = TaskCreated.model_validate(
        {
            **_links(task),
            **task.model_dump(
                include={
                    "title",
                    "description",
                    "deadline",
                    "assignee_employee_id",
                    "priority",
                    "status",
                    "directions",
                }
            ),
        }
    )
    return _task_event(outbox, TASK_CREATED, payload, task, actor)


def task_changed(
    outbox: Outbox, task: Task, changes: dict[str, dict[str, Any]], actor: Actor
) -> Envelope:
    payload = TaskChanged(
        **_links(task),
        changes={name: FieldChange(**change) for name, change in changes.items()},
    )
    return _task_event(outbox, TASK_CHANGED, payload, task, actor)


def task_completed(outbox: Outbox, task: Task, actor: Actor) -> Envelope:
    assert task.result is not None
    assert task.completed_at is not None
    payload = TaskCompleted(
        **_links(task),
        assignee_employee_id=task.assignee_employee_id,
        result=task.result,
        completed_at=task.completed_at,
        overdue=task.completed_at > task.deadline,
    )
    return _task_event(outbox, TASK_COMPLETED, payload, task, actor)


def task_reassigned(
    outbox: Outbox,
    task: Task,
    *,
    from_employee_id: uuid.UUID,
    reason: str | None,
    handover_id: uuid.UUID | None,
    actor: Actor,
) -> Envelope:
    payload = TaskReassigned(
        **_links(task),
        from_employee_id=from_employee_id,
        to_employee_id=task.assignee_employee_id,
        reason=reason,
        handover_id=handover_id,
    )
    return _task_event(outbox, TASK_REASSIGNED, payload, task, actor)


def task_overdue(outbox: Outbox, task: Task, detected_at: datetime, actor: Actor) -> Envelope:
    payload = TaskOverdue(
        **_links(task),
        assignee_employee_id=task.assignee_employee_id,
        title=task.title,
        deadline=task.deadline,
        detected_at=detected_at,
    )
    return _task_event(outbox, TASK_OVERDUE, payload, task, actor)


def _task_data(task: Task) -> dict[str, Any]:
    return {
        "task_id": str(task.id),
        "deal_id": str(task.deal_id) if task.deal_id else None,
        "organization_id": str(task.organization_id) if task.organization_id else None,
        "deadline": task.deadline.isoformat(),
    }


def task_reminder(
    outbox: Outbox, task: Task, *, lead: timedelta, now: datetime, actor: Actor
) -> Envelope:
    """Schedule (or move) the reminder of an open task to its assignee, or cancel it when
    there is nothing left to remind of (done, or already due)."""
    when = reminder_time(task.deadline, lead, now) if task.status == "open" else None
    if when is None:
        return task_reminder_cancelled(outbox, task, actor)
    payload = ReminderScheduled(
        reminder_id=reminder_id(task.id),
        due_at=when,
        recipient=Recipient(employee_id=str(task.assignee_employee_id)),
        channel=Channel.INAPP,
        kind="task.reminder",
        subject=f"Task: {task.title}"[:500],
        text=(f"Due at {task.deadline.isoformat()}.\n{task.description or ''}")[:20_000],
        payload=_task_data(task),
    )
    return _task_event(outbox, reminder_scheduled(PIPELINE), payload, task, actor)


def task_reminder_cancelled(outbox: Outbox, task: Task, actor: Actor) -> Envelope:
    payload = ReminderCancelled(reminder_id=reminder_id(task.id))
    return _task_event(outbox, reminder_cancelled(PIPELINE), payload, task, actor)


def task_overdue_notice(outbox: Outbox, task: Task, actor: Actor) -> Envelope:
    """Ask the notifier to tell the assignee a task is overdue (once per deadline)."""
    payload = NotificationRequested(
        idempotency_key=overdue_key(task.id, task.deadline),
        channel=Channel.INAPP,
        kind="task.overdue",
        recipients=[Recipient(employee_id=str(task.assignee_employee_id))],
        subject=f"Overdue task: {task.title}"[:500],
        text=f"Was due at {task.deadline.isoformat()}.",
        data=_task_data(task),
    )
    return _task_event(outbox, notification_requested(PIPELINE), payload, task, actor)


def _lead_event(
    outbox: Outbox, event_type: str, payload: Any, lead: Lead, actor: Actor
) -> Envelope:
    return outbox.envelope(
        event_type, payload, aggregate_id=str(lead.id), directions=lead.directions, actor=actor
    )


def lead_received(outbox: Outbox, lead: Lead, actor: Actor) -> Envelope:
    """A new lead, or a repeat of an open one (its count of repeats)."""
    payload = LeadReceived.model_validate(
        {
            **lead.model_dump(
                mode="json",
                include={
                    "version",
                    "direction",
                    "source",
                    "external_id",
                    "status",
                    "contact_name",
                    "email",
                    "phone",
                    "company_name",
                    "inn",
                    "details",
                    "suggested_organization_id",
                    "assignee_employee_id",
                    "repeats",
                },
            ),
            "lead_id": str(lead.id),
            "message": lead.last_message if lead.repeats else lead.message,
            "received_at": lead.last_received_at.isoformat(),
        }
    )
    return _lead_event(outbox, LEAD_RECEIVED, payload, lead, actor)


def lead_assigned(
    outbox: Outbox, lead: Lead, previous: uuid.UUID | None, automatic: bool, actor: Actor
) -> Envelope:
    assert lead.assignee_employee_id is not None
    payload = LeadAssigned(
        lead_id=lead.id,
        version=lead.version,
        direction=lead.direction,
        from_employee_id=previous,
        to_employee_id=lead.assignee_employee_id,
        automatic=automatic,
    )
    return _lead_event(outbox, LEAD_ASSIGNED, payload, lead, actor)


def lead_converted(
    outbox: Outbox, lead: Lead, organization_id: uuid.UUID, actor: Actor
) -> Envelope:
    assert lead.deal_id is not None
    payload = LeadConverted(
        lead_id=lead.id,
        version=lead.version,
        direction=lead.direction,
        deal_id=lead.deal_id,
        organization_id=organization_id,
    )
    return _lead_event(outbox, LEAD_CONVERTED, payload, lead, actor)


def lead_rejected(outbox: Outbox, lead: Lead, actor: Actor) -> Envelope:
    assert lead.reject_reason is not None
    payload = LeadRejected(
        lead_id=lead.id,
        version=lead.version,
        direction=lead.direction,
        reason=lead.reject_reason,
        comment=lead.reject_comment,
    )
    return _lead_event(outbox, LEAD_REJECTED, payload, lead, actor)


def lead_assigned_notice(outbox: Outbox, lead: Lead, actor: Actor) -> Envelope:
    """Ask the notifier to tell the manager a lead is theirs (once per lead version)."""
    assert lead.assignee_employee_id is not None
    who = lead.company_name or lead.contact_name or lead.email or lead.phone or lead.source
    payload = NotificationRequested(
        idempotency_key=f"lead-assigned:{lead.id}:{lead.version}",
        channel=Channel.INAPP,
        kind="lead.assigned",
        recipients=[Recipient(employee_id=str(lead.assignee_employee_id))],
        subject=f"New lead: {who}"[:500],
        text=(lead.last_message if lead.repeats else lead.message) or f"From {lead.source}.",
        data={
            "lead_id": str(lead.id),
            "direction": lead.direction,
            "source": lead.source,
            "contact_name": lead.contact_name,
            "email": lead.email,
            "phone": lead.phone,
            "company_name": lead.company_name,
        },
    )
    return _lead_event(outbox, notification_requested(PIPELINE), payload, lead, actor)
