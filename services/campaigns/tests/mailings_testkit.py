"""Helpers for the mailings tests: persons with addresses and employments as the directory's
state topic announces them, consent, a mailing, and the mailing worker's steps run in-process."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from clientele_campaigns.app import PUBLISHES
from clientele_campaigns.settings import CampaignsSettings
from clientele_campaigns.tables import metadata
from clientele_shared.events.catalog import PERSONS_STATE
from clientele_shared.events.schemas.directory import (
    EmploymentState,
    OrganizationState,
    PersonState,
)
from clientele_shared.runtime import ServiceRuntime
from clientele_testkit.stack import Stack, directory_envelope

PUBLIC_URL = "https://crm.example.test"
T = TypeVar("T")


def contact(
    stack: Stack,
    *,
    first: str | None,
    middle: str | None,
    last: str,
    organization: uuid.UUID | None,
    position: str | None = "Главный бухгалтер",
    emails: Sequence[str] = (),
    directions: Sequence[str] = ("north",),
    blocked: bool = False,
    attributes: dict[str, Any] | None = None,
    wait: bool = True,
) -> uuid.UUID:
    person_id = uuid.uuid4()
    employments = (
        []
        if organization is None
        else [
            EmploymentState(
                employment_id=uuid.uuid4(),
                organization_id=organization,
                version=1,
                position=position,
            )
        ]
    )
    state = PersonState(
        person_id=person_id,
        version=1,
        revision=1,
        first_name=first,
        middle_name=middle,
        last_name=last,
        emails=list(emails),
        directions=list(directions),
        attributes=attributes or {},
        employments=employments,
        blocked=blocked,
    )
    stack.send(PERSONS_STATE, [directory_envelope("directory.person.state", state, person_id)])
    if wait:
        stack.wait_until(
            "SELECT count(*) FROM mailing_contacts c JOIN persons p USING (person_id) "
            "WHERE person_id = :p",
            1,
            "the contact",
            p=person_id,
        )
    return person_id


def premises(
    stack: Stack,
    name: str,
    *,
    postal_address: dict[str, Any] | None,
    fax: str | None = None,
    directions: Sequence[str] = ("north",),
) -> uuid.UUID:
    """An organization with a postal address (and a fax), as its state topic announces it."""
    organization_id = uuid.uuid4()
    state = OrganizationState(
        organization_id=organization_id,
        version=1,
        revision=1,
        legal_name=name,
        postal_address=postal_address,
        phones=[] if fax is None else [{"number": fax, "kind": "fax"}],
        status="active",
        directions=list(directions),
    )
    stack.publish_state("directory.organization.state", state, str(organization_id))
    stack.wait_until(
        "SELECT count(*) FROM mailing_organizations m JOIN organizations o USING "
        "(organization_id) WHERE organization_id = :o",
        1,
        "the organization's premises",
        o=organization_id,
    )
    return organization_id


def consent(
    stack: Stack,
    person_id: uuid.UUID,
    granted: bool = True,
    source: str = "form",
    channel: str = "email",
) -> None:
    body = {"person_id": str(person_id), "channel": channel, "granted": granted, "source": source}
    response = stack.call("POST", "/v1/consents", stack.user(["north"]), json=body)
    assert response.status_code == 201, response.text


def mailing_body(audience: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "title": "Новости для бухгалтеров",
        "directions": ["north"],
        "template": {
            "subject": "{{ person.salutation }}, новости {{ organization.name }}",
            "html": (
                "<p>{{ person.salutation }}!</p><p>Письмо {{ person.dative.first_middle }} "
                "из {{ organization.name }} ({{ attributes.code | default('—') }}).</p>"
                '<a href="{{ unsubscribe_url }}">Отписаться</a>'
            ),
            "text": "{{ person.salutation }}! Отписаться: {{ unsubscribe_url }}",
        },
        "audience": audience,
        **extra,
    }


def worker(stack: Stack, step: Callable[[ServiceRuntime], Awaitable[T]], batch: int = 500) -> T:
    """Run one of the mailing worker's steps in this process, on the service's database."""

    async def run() -> T:
        settings = CampaignsSettings(
            database_url=stack.database_url,  # type: ignore[arg-type]
            kafka_bootstrap_servers=stack.bootstrap,
            public_base_url=PUBLIC_URL,
            mailing_batch_size=batch,
        )
        runtime = ServiceRuntime(settings, metadata, publishes=PUBLISHES)
        try:
            return await step(runtime)
        finally:
            await runtime.producer.stop()
            await runtime.engine.dispose()

    return asyncio.run(run())
