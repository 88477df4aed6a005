"""Events the directory publishes about its organizations."""

from clientele_shared.events.catalog import OrganizationCreated
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox

from clientele_directory.domain import Organization


def organization_created(outbox: Outbox, org: Organization, actor: Actor) -> Envelope:
    return outbox.envelope(
        "directory.organization.created",
        OrganizationCreated(
            organization_id=org.id,
            legal_name=org.legal_name,
            short_name=org.short_name,
            inn=org.inn,
            status=org.status.value,
            directions=org.directions,
        ),
        aggregate_id=str(org.id),
        directions=org.directions,
        actor=actor,
    )
