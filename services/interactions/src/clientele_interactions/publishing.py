"""The events interactions publishes: the contact log's events and requests to the notifier."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas import interactions as schemas
from clientele_shared.events.schemas.base import FieldChange
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
from clientele_shared.events.topics import INTERACTIONS
from pydantic import BaseModel

from clientele_interactions.log.rules import overdue_key, reminder_id, reminder_time
from clientele_interactions.log.schemas import Interaction


def _snapshot(interaction: Interaction) -> dict[str, object]:
    return {
        "interaction_id": interaction.id,
        "organization_id": interaction.organization_id,
        "version": interaction.version,
        "kind": interaction.kind,
        "direction": interaction.direction,
        "status": interaction.status,
        "occurred_at": interaction.occurred_at,
        "due_at": interaction.due_at,
        "duration_seconds": interaction.duration_seconds,
        "person_ids": interaction.person_ids,
        "responsible_employee_id": interaction.responsible_employee_id,
        "subject": interaction.subject,
        "result": interaction.result,
        "deal_id": interaction.deal_id,
        "campaign_id": interaction.campaign_id,
        "follows_id": interaction.follows_id,
        "source": interaction.source,
    }


class Publisher:
    """Builds the envelopes of one change; the caller adds them to the outbox in its
    transaction."""

    def __init__(self, outbox: Outbox, directions: Sequence[str], actor: Actor | None) -> None:
        self.outbox = outbox
        self.directions = tuple(directions)
        self.actor = actor

    def _event(self, event_type: str, payload: BaseModel, aggregate_id: uuid.UUID) -> Envelope:
        return self.outbox.envelope(
            event_type,
            payload,
            aggregate_id=str(aggregate_id),
            directions=self.directions,
            actor=self.actor,
        )

    def created(self, interaction: Interaction) -> Envelope:
        if interaction.status == "planned":
            return self._event(
                schemas.INTERACTION_PLANNED,
                schemas.InteractionPlanned.model_validate(_snapshot(interaction)),
                interaction.id,
            )
        return self._event(
            schemas.INTERACTION_LOGGED,
            schemas.InteractionLogged.model_validate(_snapshot(interaction)),
            interaction.id,
        )

    def completed(self, interaction: Interaction, next_id: uuid.UUID | None) -> Envelope:
        payload = schemas.InteractionCompleted.model_validate(
            {**_snapshot(interaction), "next_interaction_id": next_id}
        )
        return self._event(schemas.INTERACTION_COMPLETED, payload, interaction.id)

    def rescheduled(self, interaction: Interaction, previous_due_at: datetime) -> Envelope:
        assert interaction.due_at is not None
        payload = schemas.InteractionRescheduled(
            interaction_id=interaction.id,
            organization_id=interaction.organization_id,
            version=interaction.version,
            previous_due_at=previous_due_at,
            due_at=interaction.due_at,
            responsible_employee_id=interaction.responsible_employee_id,
        )
        return self._event(schemas.INTERACTION_RESCHEDULED, payload, interaction.id)

    def updated(self, interaction: Interaction, changes: dict[str, dict[str, object]]) -> Envelope:
        payload = schemas.InteractionUpdated(
            interaction_id=interaction.id,
            organization_id=interaction.organization_id,
            version=interaction.version,
            changes={name: FieldChange(**change) for name, change in changes.items()},
        )
        return self._event(schemas.INTERACTION_UPDATED, payload, interaction.id)

    def cancelled(self, interaction: Interaction) -> Envelope:
        payload = schemas.InteractionCancelled(
            interaction_id=interaction.id,
            organization_id=interaction.organization_id,
            version=interaction.version,
            reason=interaction.cancel_reason,
        )
        return self._event(schemas.INTERACTION_CANCELLED, payload, interaction.id)

    def overdue(self, interaction: Interaction, detected_at: datetime) -> Envelope:
        assert interaction.due_at is not None
        payload = schemas.InteractionOverdue(
            interaction_id=interaction.id,
            organization_id=interaction.organization_id,
            due_at=interaction.due_at,
            detected_at=detected_at,
            responsible_employee_id=interaction.responsible_employee_id,
        )
        return self._event(schemas.INTERACTION_OVERDUE, payload, interaction.id)

    def handed_over(
        self,
        interaction: Interaction,
        handover_id: uuid.UUID,
        from_employee_id: uuid.UUID,
        to_employee_id: uuid.UUID,
    ) -> Envelope:
        payload = schemas.InteractionHandedOver(
            interaction_id=interaction.id,
            organization_id=interaction.organization_id,
            version=interaction.version,
            handover_id=handover_id,
            from_employee_id=from_employee_id,
            to_employee_id=to_employee_id,
        )
        return self._event(schemas.INTERACTION_HANDED_OVER, payload, interaction.id)

    def responsibility_handed_over(self, payload: schemas.ResponsibilityHandedOver) -> Envelope:
        return self._event(schemas.RESPONSIBILITY_HANDED_OVER, payload, payload.organization_id)

    # --- requests to the notifier ------------------------------------------------------------

    def reminder(
        self, interaction: Interaction, *, lead: timedelta, now: datetime, client_name: str
    ) -> Envelope:
        """Schedule (or move) the reminder of a planned contact, or cancel it when there is
        nothing left to remind of (done, cancelled, or already due)."""
        rid = reminder_id(interaction.id)
        when = (
            reminder_time(interaction.due_at, lead, now)
            if interaction.status == "planned" and interaction.due_at is not None
            else None
        )
        if when is None or interaction.responsible_employee_id is None:
            return self.cancel_reminder(interaction)
        assert interaction.due_at is not None
        payload = ReminderScheduled(
            reminder_id=rid,
            due_at=when,
            recipient=Recipient(employee_id=str(interaction.responsible_employee_id)),
            channel=Channel.INAPP,
            kind="interaction.reminder",
            subject=f"{_KIND_NAMES[interaction.kind]} with {client_name}"[:500],
            text=(f"{interaction.subject}\nDue at {interaction.due_at.isoformat()}.")[:20_000],
            payload={
                "interaction_id": str(interaction.id),
                "organization_id": str(interaction.organization_id),
                "due_at": interaction.due_at.isoformat(),
            },
        )
        return self._event(reminder_scheduled(INTERACTIONS), payload, interaction.id)

    def cancel_reminder(self, interaction: Interaction) -> Envelope:
        """Cancel the reminder of a planned contact (its client was deleted)."""
        return self._event(
            reminder_cancelled(INTERACTIONS),
            ReminderCancelled(reminder_id=reminder_id(interaction.id)),
            interaction.id,
        )

    def overdue_notice(self, interaction: Interaction, *, client_name: str) -> Envelope | None:
        """Ask the notifier to tell the responsible employee a contact is overdue."""
        if interaction.responsible_employee_id is None or interaction.due_at is None:
            return None
        payload = NotificationRequested(
            idempotency_key=overdue_key(interaction.id, interaction.due_at),
            channel=Channel.INAPP,
            kind="interaction.overdue",
            recipients=[Recipient(employee_id=str(interaction.responsible_employee_id))],
            subject=f"Overdue: {_KIND_NAMES[interaction.kind]} with {client_name}"[:500],
            text=(f"{interaction.subject}\nWas due at {interaction.due_at.isoformat()}.")[:200_000],
            data={
                "interaction_id": str(interaction.id),
                "organization_id": str(interaction.organization_id),
                "due_at": interaction.due_at.isoformat(),
            },
        )
        return self._event(notification_requested(INTERACTIONS), payload, interaction.id)


_KIND_NAMES = {
    "call": "Call",
    "email": "E-mail",
    "meeting": "Meeting",
    "message": "Message",
    "other": "Contact",
}
