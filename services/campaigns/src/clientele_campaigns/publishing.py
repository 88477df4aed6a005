"""Events out: each outgoing event built from the domain model (staged by the service layer)."""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.schemas.base import FieldChange
from clientele_shared.events.schemas.campaigns import (
    CAMPAIGN_CHANGED,
    CAMPAIGN_CREATED,
    CAMPAIGN_DELETED,
    CAMPAIGN_RESTORED,
    MAX_ADDED,
    PARTICIPANT_OUTCOME_RECORDED,
    PARTICIPANT_STATUS_CHANGED,
    PARTICIPANTS_ADDED,
    AddedParticipant,
    CampaignChanged,
    CampaignCreatedV2,
    CampaignDeleted,
    CampaignRestoredV2,
    ParticipantOutcomeRecorded,
    ParticipantsAdded,
    ParticipantStatusChanged,
)
from clientele_shared.events.schemas.mailings import (
    ADDRESS_BOUNCED,
    CONSENT_CHANGED,
    MAILING_RESULT_RECORDED,
    AddressBounced,
    ConsentChanged,
    MailingResultRecorded,
)
from clientele_shared.events.schemas.notifications import (
    Channel,
    NotificationRequested,
    notification_requested,
)
from clientele_shared.events.schemas.notifications import Recipient as NotifiedRecipient
from clientele_shared.events.topics import CAMPAIGNS
from clientele_shared.templating import RenderedMessage

from clientele_campaigns.campaigns.rules import Campaign
from clientele_campaigns.consent.rules import ConsentEntry
from clientele_campaigns.mailings.rules import Mailing, Resolved, idempotency_key
from clientele_campaigns.participants.rules import Participant
from clientele_campaigns.registration.rules import Registration


def _snapshot(campaign: Campaign) -> dict[str, Any]:
    """The whole record as v2 of ``created`` and ``restored`` carry it (the kind's names too)."""
    values = campaign.fields().model_dump(mode="json")
    return {
        **values,
        "campaign_id": str(campaign.id),
        "version": campaign.version,
        "kind_name_ru": campaign.kind_name_ru,
        "kind_name_en": campaign.kind_name_en,
    }


def campaign_created(outbox: Outbox, campaign: Campaign, actor: Actor) -> Envelope:
    return outbox.envelope(
        CAMPAIGN_CREATED,
        CampaignCreatedV2.model_validate(_snapshot(campaign)),
        aggregate_id=str(campaign.id),
        directions=campaign.directions,
        actor=actor,
    )


def campaign_restored(outbox: Outbox, campaign: Campaign, actor: Actor) -> Envelope:
    return outbox.envelope(
        CAMPAIGN_RESTORED,
        CampaignRestoredV2.model_validate(_snapshot(campaign)),
        aggregate_id=str(campaign.id),
        directions=campaign.directions,
        actor=actor,
    )


def campaign_changed(
    outbox: Outbox,
    campaign: Campaign,
    changes: dict[str, dict[str, Any]],
    actor: Actor,
    *,
    previous_directions: Sequence[str] = (),
) -> Envelope:
    """Only the changed fields; an event that left directions is announced to the old ones too."""
    payload = CampaignChanged(
        campaign_id=campaign.id,
        version=campaign.version,
        changes={name: FieldChange(**change) for name, change in changes.items()},
    )
    return outbox.envelope(
        CAMPAIGN_CHANGED,
        payload,
        aggregate_id=str(campaign.id),
        directions=sorted({*campaign.directions, *previous_directions}),
        actor=actor,
    )


def campaign_deleted(outbox: Outbox, campaign: Campaign, version: int, actor: Actor) -> Envelope:
    return outbox.envelope(
        CAMPAIGN_DELETED,
        CampaignDeleted(campaign_id=campaign.id, version=version),
        aggregate_id=str(campaign.id),
        directions=campaign.directions,
        actor=actor,
    )


def participants_added(
    outbox: Outbox, campaign: Campaign, added: list[Participant], actor: Actor
) -> list[Envelope]:
    """One event per batch of up to ``MAX_ADDED`` participants that joined at one stage with
    one status (an addition puts all of them at the same stage and status)."""
    return [
        _added(
            outbox,
            campaign,
            ParticipantsAdded(
                campaign_id=campaign.id,
                stage_id=batch[0].stage_id,
                status=batch[0].status,
                participants=[
                    AddedParticipant(
                        participant_id=p.id,
                        organization_id=p.organization_id,
                        person_id=p.person_id,
                    )
                    for p in batch
                ],
            ),
            actor,
        )
        for batch in (added[i : i + MAX_ADDED] for i in range(0, len(added), MAX_ADDED))
    ]


def batches_added(
    outbox: Outbox,
    campaign: Campaign,
    stage_id: uuid.UUID,
    status: str,
    batches: list[str],
    actor: Actor,
) -> list[Envelope]:
    """The same events from batches of participants the database wrote as JSON arrays (a bulk
    addition: parsed straight into the payload, no object per participant in between)."""
    head = json.dumps(
        {"campaign_id": str(campaign.id), "stage_id": str(stage_id), "status": status}
    )
    return [
        _added(
            outbox,
            campaign,
            ParticipantsAdded.model_validate_json(f'{head[:-1]}, "participants": {batch}}}'),
            actor,
        )
        for batch in batches
    ]


def _added(
    outbox: Outbox, campaign: Campaign, payload: ParticipantsAdded, actor: Actor
) -> Envelope:
    return outbox.envelope(
        PARTICIPANTS_ADDED,
        payload,
        aggregate_id=str(campaign.id),
        directions=campaign.directions,
        actor=actor,
    )


def participant_status_changed(
    outbox: Outbox,
    campaign: Campaign,
    participant: Participant,
    old_status: str,
    changed_at: datetime,
    actor: Actor,
) -> Envelope:
    return outbox.envelope(
        PARTICIPANT_STATUS_CHANGED,
        ParticipantStatusChanged.model_validate(
            {
                "campaign_id": campaign.id,
                "participant_id": participant.id,
                "version": participant.version,
                "organization_id": participant.organization_id,
                "person_id": participant.person_id,
                "old_status": old_status,
                "status": participant.status,
                "changed_at": changed_at,
            }
        ),
        aggregate_id=str(campaign.id),
        directions=campaign.directions,
        actor=actor,
    )


def participant_outcome(
    outbox: Outbox, campaign: Campaign, participant: Participant, actor: Actor
) -> Envelope:
    return outbox.envelope(
        PARTICIPANT_OUTCOME_RECORDED,
        ParticipantOutcomeRecorded(
            campaign_id=campaign.id,
            participant_id=participant.id,
            version=participant.version,
            organization_id=participant.organization_id,
            person_id=participant.person_id,
            loyalty=participant.loyalty,
            partnership_interest=participant.partnership_interest,
            notes=participant.notes,
            follow_up=participant.follow_up,
        ),
        aggregate_id=str(campaign.id),
        directions=campaign.directions,
        actor=actor,
    )


def registration_confirmation(
    outbox: Outbox, campaign: Campaign, registration: Registration, code: str, actor: Actor
) -> Envelope:
    """The registrant's confirmation e-mail with the ticket code, asked of the notifier once
    per registration (the idempotency key is the registration's: a redelivery is one e-mail)."""
    when = campaign.planned_start.astimezone(UTC).strftime("%d.%m.%Y %H:%M UTC")
    lines = [
        f"Здравствуйте, {registration.first_name} {registration.last_name}!",
        "",
        f"Вы зарегистрированы на мероприятие «{campaign.title}».",
        f"Когда: {when}",
        *([f"Где: {campaign.place}"] if campaign.place else []),
        "",
        f"Код билета: {code}",
        "Покажите его на входе.",
    ]
    payload = NotificationRequested(
        idempotency_key=f"registration:{registration.id}:confirmation",
        channel=Channel.EMAIL,
        kind="campaigns.registration",
        recipients=[
            NotifiedRecipient(
                email=registration.email,
                name=f"{registration.first_name} {registration.last_name}"[:200],
            )
        ],
        subject=f"Регистрация: {campaign.title}"[:500],
        text="\n".join(lines),
        data={
            "campaign_id": str(campaign.id),
            "registration_id": str(registration.id),
            "ticket_code": code,
        },
    )
    return outbox.envelope(
        notification_requested(CAMPAIGNS),
        payload,
        aggregate_id=str(registration.id),
        directions=campaign.directions,
        actor=actor,
    )


# --- mailings (ADR 38) -------------------------------------------------------------------------


def consent_changed(
    outbox: Outbox, entry: ConsentEntry, directions: Sequence[str], actor: Actor
) -> Envelope:
    return outbox.envelope(
        CONSENT_CHANGED,
        ConsentChanged(
            consent_id=entry.id,
            person_id=entry.person_id,
            channel=entry.channel,
            granted=entry.granted,
            source=entry.source,
            recorded_at=entry.recorded_at,
            mailing_id=entry.mailing_id,
            note=entry.note,
        ),
        aggregate_id=str(entry.person_id),
        directions=directions,
        actor=actor,
    )


def address_bounced(
    outbox: Outbox,
    person_id: uuid.UUID,
    email: str,
    mailing_id: uuid.UUID,
    reason: str | None,
    directions: Sequence[str],
    actor: Actor,
) -> Envelope:
    return outbox.envelope(
        ADDRESS_BOUNCED,
        AddressBounced(
            person_id=person_id,
            email=email,
            mailing_id=mailing_id,
            reason=reason[:2000] if reason else None,
            bounced_at=datetime.now(UTC),
        ),
        aggregate_id=str(person_id),
        directions=directions,
        actor=actor,
    )


def mailing_result(
    outbox: Outbox,
    mailing_id: uuid.UUID,
    person_id: uuid.UUID,
    result: str,
    reason: str | None,
    facts: dict[str, Any],
    actor: Actor,
) -> Envelope:
    """One recipient's delivery result, for the automation engine (keyed by the person)."""
    return outbox.envelope(
        MAILING_RESULT_RECORDED,
        MailingResultRecorded.model_validate(
            {
                "mailing_id": mailing_id,
                "campaign_id": facts["campaign_id"],
                "person_id": person_id,
                "organization_id": facts["organization_id"],
                "channel": facts["channel"],
                "result": result,
                "reason": reason[:2000] if reason else None,
                "recorded_at": facts["result_at"] or datetime.now(UTC),
            }
        ),
        aggregate_id=str(person_id),
        directions=facts["directions"],
        actor=actor,
    )


def fax_message(
    outbox: Outbox,
    mailing: Mailing,
    person_id: uuid.UUID,
    message: RenderedMessage,
    *,
    endpoint: str,
    name: str | None,
    data: dict[str, Any],
) -> Envelope:
    """One recipient's fax as a request to the notifier's webhook channel (the fax gateway's
    endpoint); ``data`` tells the gateway the number, the PDF's and the result's URLs (ADR 47)."""
    key = idempotency_key(mailing.id, person_id)
    return outbox.envelope(
        notification_requested(CAMPAIGNS),
        NotificationRequested(
            idempotency_key=key,
            channel=Channel.WEBHOOK,
            kind="mailing.fax",
            recipients=[NotifiedRecipient(endpoint=endpoint, name=(name or "")[:200] or None)],
            subject=message.subject[:500] or mailing.title[:500],
            text=message.text,
            data=data,
        ),
        aggregate_id=key,
        directions=mailing.directions,
    )


def mailing_message(
    outbox: Outbox,
    mailing: Mailing,
    recipient: Resolved,
    message: RenderedMessage,
    *,
    unsubscribe_url: str,
    name: str | None,
) -> Envelope:
    """One recipient's personalised message as a delivery request to the notifier; its
    idempotency key is the same however often it is handed over."""
    key = idempotency_key(mailing.id, recipient.person_id)
    return outbox.envelope(
        notification_requested(CAMPAIGNS),
        NotificationRequested(
            idempotency_key=key,
            channel=Channel.EMAIL,
            kind="mailing",
            recipients=[NotifiedRecipient(email=recipient.email, name=(name or "")[:200] or None)],
            subject=message.subject[:500] or mailing.title[:500],
            html=message.html,
            text=message.text,
            attachments=mailing.attachments,
            reply_to=mailing.reply_to,
            list_unsubscribe=unsubscribe_url,
        ),
        aggregate_id=key,
        directions=mailing.directions,
    )
