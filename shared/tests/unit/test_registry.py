"""Topic grants and event schemas: the registry is the single source of truth."""

import uuid

import pytest
from clientele_shared.events.catalog import (
    DEALS,
    ORGANIZATIONS,
    REGISTRY,
    SERVICES,
    OrganizationCreated,
)
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.events.registry import (
    EventSpec,
    GrantError,
    Registry,
    Topic,
    UnknownEventError,
)
from clientele_shared.events.schemas.directory import OrganizationCreatedV2, OrganizationUpdated
from clientele_shared.events.tables import outbox_table
from pydantic import BaseModel, ValidationError
from sqlalchemy import MetaData


def _created() -> OrganizationCreatedV2:
    return OrganizationCreatedV2(
        organization_id=uuid.uuid4(),
        legal_name="ООО «Ромашка»",
        status="client",
        directions=["north"],
    )


def test_every_topic_has_one_known_owner_and_known_consumers() -> None:
    known = {*SERVICES, "erp"}
    for topic in REGISTRY.topics.values():
        assert topic.owner in known
        assert topic.consumers <= known
        # only the pipeline reads its own topics: its automation fires on deal and task events
        assert topic.owner not in topic.consumers or topic.name in (
            DEALS,
            "clientele.pipeline.tasks",
        )


def test_publishing_outside_the_grant_fails() -> None:
    REGISTRY.check_grants("directory", publishes=[ORGANIZATIONS])
    with pytest.raises(GrantError, match=r"may not publish to topic 'clientele\.pipeline\.deals'"):
        REGISTRY.check_grants("directory", publishes=[DEALS])


def test_consuming_outside_the_grant_fails() -> None:
    REGISTRY.check_grants("interactions", consumes=[ORGANIZATIONS])
    with pytest.raises(GrantError, match="may not consume"):
        REGISTRY.check_grants("notifier", consumes=[ORGANIZATIONS])


def test_unknown_topic_is_refused() -> None:
    with pytest.raises(GrantError, match="not in the topic registry"):
        REGISTRY.check_publish("directory", "clientele.nowhere")


def test_outbox_refuses_an_event_of_another_services_topic() -> None:
    outbox = Outbox("interactions", REGISTRY, outbox_table(MetaData()))
    with pytest.raises(GrantError):
        outbox.envelope("directory.organization.created", _created(), aggregate_id="x")


def test_outbox_refuses_a_payload_of_the_wrong_schema() -> None:
    outbox = Outbox("directory", REGISTRY, outbox_table(MetaData()))
    with pytest.raises(TypeError, match="OrganizationUpdated"):
        outbox.envelope("directory.organization.updated", _created(), aggregate_id="x")


def test_envelope_round_trip_keeps_unicode_and_utc() -> None:
    outbox = Outbox("directory", REGISTRY, outbox_table(MetaData()))
    envelope = outbox.envelope(
        "directory.organization.created", _created(), aggregate_id="42", directions=["b", "a", "a"]
    )
    again = Envelope.from_bytes(envelope.to_bytes())
    assert again == envelope
    assert again.directions == ("a", "b")
    assert again.occurred_at.utcoffset() is not None
    assert again.occurred_at.utcoffset().total_seconds() == 0  # type: ignore[union-attr]
    payload = REGISTRY.validate(again)
    assert isinstance(payload, OrganizationCreated)
    assert payload.legal_name == "ООО «Ромашка»"


def test_unknown_type_version_and_bad_payload_are_rejected() -> None:
    outbox = Outbox("directory", REGISTRY, outbox_table(MetaData()))
    good = outbox.envelope("directory.organization.created", _created(), aggregate_id="1")
    with pytest.raises(UnknownEventError, match="not registered"):
        REGISTRY.validate(good.model_copy(update={"type": "directory.unknown"}))
    with pytest.raises(UnknownEventError, match="version 9"):
        REGISTRY.validate(good.model_copy(update={"schema_version": 9}))
    with pytest.raises(UnknownEventError, match="invalid payload"):
        REGISTRY.validate(good.model_copy(update={"payload": {"legal_name": 5}}))


def test_a_reader_ignores_fields_it_does_not_know_at_any_depth() -> None:
    outbox = Outbox("directory", REGISTRY, outbox_table(MetaData()))
    good = outbox.envelope("directory.organization.created", _created(), aggregate_id="1")
    newer = {**good.payload, "loyalty_tier": "gold"}
    payload = REGISTRY.validate(good.model_copy(update={"payload": newer}))
    assert isinstance(payload, OrganizationCreated)
    assert not hasattr(payload, "loyalty_tier")
    changes = {"legal_name": {"old": "A", "new": "B", "changed_by_rule": "r1"}}
    updated = {"organization_id": str(uuid.uuid4()), "version": 2, "changes": changes}
    envelope = good.model_copy(
        update={"type": "directory.organization.updated", "schema_version": 1, "payload": updated}
    )
    assert REGISTRY.validate(envelope).changes["legal_name"].new == "B"  # type: ignore[attr-defined]
    with pytest.raises(UnknownEventError, match="invalid payload"):
        (
            REGISTRY.validate(good.model_copy(update={"payload": {**newer, "legal_name": 5}})),
            "an unknown field never excuses a wrong one",
        )


def test_envelope_needs_an_aware_time_and_rejects_extra_fields() -> None:
    raw = {
        "type": "t",
        "schema_version": 1,
        "producer": "p",
        "correlation_id": "c",
        "aggregate_id": "a",
        "payload": {},
    }
    with pytest.raises(ValidationError):
        Envelope.model_validate({**raw, "occurred_at": "2026-01-01T00:00:00"})
    with pytest.raises(ValidationError):
        Envelope.model_validate({**raw, "surprise": True})


def test_latest_is_the_newest_version_of_an_event_type() -> None:
    class V1(BaseModel):
        a: int

    class V2(BaseModel):
        a: int
        b: int = 0

    topic = Topic("clientele.test.things", "directory", frozenset({"notifier"}))
    registry = Registry.of(
        [topic],
        [EventSpec("test.thing", 2, topic.name, V2), EventSpec("test.thing", 1, topic.name, V1)],
    )
    assert registry.latest("test.thing").payload is V2
    assert registry.latest("test.thing").version == 2  # asked again: the same answer
    with pytest.raises(UnknownEventError, match=r"test\.other"):
        registry.latest("test.other")


def test_a_service_creates_what_it_publishes_and_consumes_with_the_dead_letters() -> None:
    from clientele_shared.events.admin import topics_of
    from clientele_shared.events.catalog import ORGANIZATIONS_STATE

    topics = {
        topic.name: topic
        for topic in topics_of(REGISTRY, publishes=[DEALS], consumes=[ORGANIZATIONS_STATE])
    }
    assert set(topics) == {DEALS, ORGANIZATIONS_STATE, f"{ORGANIZATIONS_STATE}.dlt"}
    assert topics[ORGANIZATIONS_STATE].config()["cleanup.policy"] == "compact"
    assert topics[f"{ORGANIZATIONS_STATE}.dlt"].config() == {"retention.ms": 30 * 86_400_000}
    assert all(topic.partitions == 3 for topic in topics.values())


def test_payload_rows_are_the_rows_of_the_envelopes_a_model_makes() -> None:
    """A bulk writer's rows from JSON payloads (ADR 70) carry what ``envelope`` and ``rows``
    make of the same payload model: envelope, headers, topic and key; only the event id and
    the moment differ."""
    outbox = Outbox("directory", REGISTRY, outbox_table(MetaData()))
    actor = Actor(subject="importer", kind="user")
    payloads = [
        _created(),
        OrganizationCreatedV2(
            organization_id=uuid.uuid4(),
            legal_name="Ёлка «🎄»",
            status="lead",
            directions=["south", "north"],
            phones=[{"number": "+74951112233", "kind": "work", "extension": "12"}],
            attributes={"size": 12.5, "vip": True},
            responsible_employee_id=uuid.uuid4(),
        ),
        OrganizationCreatedV2(
            organization_id=uuid.uuid4(), legal_name="Без направлений", status="client"
        ),
    ]
    fast = outbox.payload_rows(
        "directory.organization.created",
        OrganizationCreatedV2,
        [(str(p.organization_id), p.directions, p.model_dump(mode="json")) for p in payloads],
        actor=actor,
    )
    slow = outbox.rows(
        [
            outbox.envelope(
                "directory.organization.created",
                p,
                aggregate_id=str(p.organization_id),
                directions=p.directions,
                actor=actor,
            )
            for p in payloads
        ]
    )
    assert len(fast) == len(slow) == 3
    varying = {"event_id", "occurred_at"}
    for got, want in zip(fast, slow, strict=True):
        assert {k: v for k, v in got.items() if k not in {"event_id", "value"}} == {
            k: v for k, v in want.items() if k not in {"event_id", "value"}
        }
        envelope = Envelope.from_bytes(got["value"])
        assert envelope.event_id == got["event_id"]
        assert envelope.model_dump(exclude=varying) == Envelope.from_bytes(
            want["value"]
        ).model_dump(exclude=varying)
        assert isinstance(REGISTRY.validate(envelope), OrganizationCreatedV2)
    assert "directions" not in fast[2]["headers"]


def test_payload_rows_refuse_another_schema_and_events_carrying_changes() -> None:
    outbox = Outbox("directory", REGISTRY, outbox_table(MetaData()))
    with pytest.raises(TypeError, match="OrganizationCreatedV2"):
        outbox.payload_rows("directory.organization.created", OrganizationCreated, [])
    with pytest.raises(TypeError, match="changes"):
        outbox.payload_rows("directory.organization.updated", OrganizationUpdated, [])
