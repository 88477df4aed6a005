"""Helpers for the interactions tests: tokens, directory events on Kafka, waiting."""

from __future__ import annotations

import asyncio
import importlib.util
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from clientele_shared.auth.tokens import TokenIssuer
from clientele_shared.db import async_url
from clientele_shared.events.catalog import (
    CAMPAIGN_EVENTS,
    DEALS,
    EMPLOYEES,
    ORGANIZATIONS,
    PERSONS,
    REGISTRY,
)
from clientele_shared.events.envelope import Actor, Envelope
from clientele_testkit.infra import S3Store
from clientele_testkit.processes import wait_for
from clientele_testkit.stack import collect_envelopes, send_envelopes
from pydantic import BaseModel
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine


def bearer(
    issuer: TokenIssuer,
    subject: str,
    roles: Sequence[str] = ("sales",),
    directions: Sequence[str] = (),
) -> dict[str, str]:
    token = issuer.mint(subject, roles=list(roles), directions=list(directions), ttl_seconds=3600)
    return {"Authorization": f"Bearer {token}"}


def directory_envelope(
    event_type: str,
    payload: BaseModel,
    aggregate_id: uuid.UUID,
    directions: Sequence[str] = (),
    *,
    producer: str = "directory",
) -> Envelope:
    """An event as its owner (the directory unless ``producer`` says otherwise) publishes it."""
    spec = REGISTRY.spec_for(event_type, payload)
    return Envelope(
        type=event_type,
        schema_version=spec.version,
        producer=producer,
        correlation_id=uuid.uuid4().hex,
        actor=Actor(subject="test", kind="user"),
        directions=tuple(directions),
        aggregate_id=str(aggregate_id),
        payload=payload.model_dump(mode="json"),
    )


def publish(bootstrap: str, topic: str, *envelopes: Envelope) -> None:
    """Publish as the directory would (its relay is not needed to test interactions)."""
    asyncio.run(send_envelopes(bootstrap, topic, envelopes))


def events_for(
    bootstrap: str, topic: str, keys: set[str], wanted: int, timeout_ms: int = 10_000
) -> list[Envelope]:
    """Read a topic from its start until ``wanted`` events keyed by ``keys`` were seen (or no
    more arrive within the timeout)."""
    return asyncio.run(collect_envelopes(bootstrap, topic, keys, wanted, timeout_ms))


@dataclass
class Stack:
    """The interactions service under test and what tests need to drive it."""

    url: str
    bootstrap: str
    issuer: TokenIssuer
    database_url: str
    attachments_dir: str
    admin: dict[str, str] = field(default_factory=dict)

    def client(
        self,
        directions: Sequence[str],
        *,
        legal_name: str = "ООО «Ромашка»",
        **extra: Any,
    ) -> uuid.UUID:
        """A client card in interactions, from a directory event; waits until it is there."""
        from clientele_shared.events.schemas.directory import OrganizationCreatedV2

        org_id = uuid.uuid4()
        payload = OrganizationCreatedV2(
            organization_id=org_id,
            legal_name=legal_name,
            status="client",
            directions=list(directions),
            **extra,
        )
        publish(
            self.bootstrap,
            ORGANIZATIONS,
            directory_envelope("directory.organization.created", payload, org_id, directions),
        )
        wait_for(
            lambda: (
                httpx.get(f"{self.url}/v1/clients/{org_id}", headers=self.admin).status_code == 200
            ),
            60,
            "the client card to arrive",
        )
        return org_id

    def person(self, directions: Sequence[str], **extra: Any) -> uuid.UUID:
        """A person in interactions' read model, from a directory event; waits until it is there."""
        from clientele_shared.events.schemas.directory import PersonCreated

        person_id = uuid.uuid4()
        fields = {"last_name": "Петров", **extra}
        payload = PersonCreated(person_id=person_id, directions=list(directions), **fields)
        publish(
            self.bootstrap,
            PERSONS,
            directory_envelope("directory.person.created", payload, person_id, directions),
        )
        wait_for(
            lambda: self.scalar("SELECT 1 FROM persons WHERE person_id = :id", id=person_id),
            60,
            "the person to arrive",
        )
        return person_id

    def employee(
        self, directions: Sequence[str], *, active: bool = True, email: str | None = None
    ) -> uuid.UUID:
        """An employee in interactions' read model, from a directory event; waits until it is
        there."""
        from clientele_shared.events.schemas.directory import EmployeeCreated

        employee_id = uuid.uuid4()
        payload = EmployeeCreated(
            employee_id=employee_id,
            email=email or f"{employee_id.hex[:12]}@ourco.example",
            name="Пётр Петров",
            roles=["sales"],
            directions=list(directions),
            active=active,
        )
        publish(
            self.bootstrap,
            EMPLOYEES,
            directory_envelope("directory.employee.created", payload, employee_id, directions),
        )
        self.wait_for_row("employees", "employee_id", employee_id)
        return employee_id

    def deal(
        self, organization_id: uuid.UUID, directions: Sequence[str], *, title: str = "Сделка"
    ) -> uuid.UUID:
        """A deal in interactions' read model, from a pipeline event; waits until it is there."""
        from decimal import Decimal

        from clientele_shared.events.schemas.pipeline import DealCreated

        deal_id = uuid.uuid4()
        payload = DealCreated(
            deal_id=deal_id,
            version=1,
            pipeline_id=uuid.uuid4(),
            stage_id=uuid.uuid4(),
            stage_name="Квалификация",
            stage_kind="open",
            status="open",
            organization_id=organization_id,
            title=title,
            amount=Decimal("1000.00"),
            currency="RUB",
            directions=list(directions),
        )
        publish(
            self.bootstrap,
            DEALS,
            directory_envelope(
                "pipeline.deal.created", payload, deal_id, directions, producer="pipeline"
            ),
        )
        self.wait_for_row("client_deals", "deal_id", deal_id)
        return deal_id

    def campaign(
        self, directions: Sequence[str], *, title: str = "Семинар", schema_version: int = 2
    ) -> uuid.UUID:
        """A marketing event in interactions' read model, from a campaigns event (``created``
        at either schema version: v1 had a fixed list of kinds, v2 a catalogue code); waits
        until it is there."""
        from clientele_shared.events.schemas.campaigns import CampaignCreated, CampaignCreatedV2

        campaign_id = uuid.uuid4()
        start = datetime.now(UTC) + timedelta(days=30)
        fields: dict[str, Any] = {
            "campaign_id": campaign_id,
            "version": 1,
            "title": title,
            "status": "planned",
            "planned_start": start,
            "planned_end": start + timedelta(hours=4),
            "directions": list(directions),
        }
        payload = (
            CampaignCreated(**fields, kind="seminar")
            if schema_version == 1
            else CampaignCreatedV2(
                **fields, kind="trade_fair", kind_name_ru="Ярмарка", kind_name_en="Trade fair"
            )
        )
        publish(
            self.bootstrap,
            CAMPAIGN_EVENTS,
            directory_envelope(
                "campaigns.campaign.created",
                payload,
                campaign_id,
                directions,
                producer="campaigns",
            ),
        )
        self.wait_for_row("campaigns", "campaign_id", campaign_id)
        return campaign_id

    def wait_for_row(self, table: str, key: str, value: uuid.UUID) -> None:
        """Wait until a read model's ``table`` has the row whose ``key`` is ``value``."""
        wait_for(
            lambda: self.scalar(f"SELECT 1 FROM {table} WHERE {key} = :id", id=value),
            60,
            f"the {table} row to arrive",
        )

    def scalar(self, sql: str, **params: Any) -> Any:
        """One value from the service's database (to see a read model catch up)."""

        async def look() -> Any:
            engine = create_async_engine(async_url(self.database_url))
            try:
                async with engine.connect() as conn:
                    return await conn.scalar(text(sql), params)
            finally:
                await engine.dispose()

        return asyncio.run(look())


@dataclass(frozen=True)
class S3Bucket:
    """A bucket of its own in the test S3 store, and a client of it."""

    store: S3Store
    name: str

    def objects(self, prefix: str = "") -> dict[str, dict[str, Any]]:
        """Key -> content type, size and ETag of every object under ``prefix``."""

        async def read() -> dict[str, dict[str, Any]]:
            async with s3_client(self.store) as client:
                listed = await client.list_objects_v2(Bucket=self.name, Prefix=prefix)
                found = {}
                for item in listed.get("Contents", []):
                    head = await client.head_object(Bucket=self.name, Key=item["Key"])
                    found[item["Key"]] = {
                        "content_type": head["ContentType"],
                        "size": head["ContentLength"],
                        "etag": head["ETag"],
                    }
                return found

        return asyncio.run(read())


def s3_client(store: S3Store) -> Any:
    """An aiobotocore S3 client of the store (an async context manager)."""
    return get_session().create_client(
        "s3",
        region_name="us-east-1",
        endpoint_url=store.endpoint_url,
        aws_access_key_id=store.access_key_id,
        aws_secret_access_key=store.secret_access_key,
        config=AioConfig(s3={"addressing_style": "path"}),
    )


def sample_msg_builder() -> Any:
    """``data/make_sample_msg.py``, the script that wrote ``data/sample.msg`` (its ``build``
    makes variants)."""
    path = Path(__file__).parent / "data" / "make_sample_msg.py"
    spec = importlib.util.spec_from_file_location("make_sample_msg", path)
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
