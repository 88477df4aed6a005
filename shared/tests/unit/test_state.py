"""State read models (ADR 18): the order of snapshots, without infrastructure."""

import uuid

from clientele_shared.events.schemas.directory import OrganizationState
from clientele_shared.events.state import ReadModel
from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Uuid

TABLE = Table(
    "cards",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("name", String),
    Column("version", Integer),
    Column("state_revision", BigInteger),
)
MODEL = ReadModel(
    TABLE,
    lambda s: {
        "id": s.organization_id,
        "name": s.legal_name,
        "version": s.version,
        "state_revision": s.revision,
    },
    key="id",
)


def _state(org: uuid.UUID, version: int, revision: int, name: str) -> OrganizationState:
    return OrganizationState(
        organization_id=org, version=version, revision=revision, legal_name=name, status="client"
    )


def test_the_newest_snapshot_of_a_record_wins_by_version_then_revision() -> None:
    a, b = uuid.uuid4(), uuid.uuid4()
    rows = MODEL.rows(
        [
            _state(a, 2, 5, "a2"),
            _state(a, 1, 9, "a1 late"),  # an older version with a later revision: no
            _state(b, 3, 7, "b3"),
            _state(b, 3, 8, "b3 blocked"),  # the same version, a later revision: yes
            _state(a, 2, 4, "a2 earlier"),
        ]
    )
    assert {row["id"]: row["name"] for row in rows} == {a: "a2", b: "b3 blocked"}


def test_rows_come_in_key_order_whatever_order_the_snapshots_came_in() -> None:
    keys = sorted(uuid.uuid4() for _ in range(20))
    rows = MODEL.rows([_state(key, 1, 1, str(key)) for key in reversed(keys)])
    assert [row["id"] for row in rows] == keys  # the upsert locks rows in one order (ADR 59)


def test_the_loader_decodes_state_records_in_one_pass_and_others_through_the_registry() -> None:
    from clientele_shared.events.catalog import ORGANIZATIONS_STATE, REGISTRY
    from clientele_shared.events.envelope import Envelope
    from clientele_shared.events.state import StateLoader

    org = uuid.uuid4()
    envelope = Envelope(
        type="directory.organization.state",
        schema_version=1,
        producer="directory",
        correlation_id="c",
        aggregate_id=str(org),
        payload=_state(org, 2, 5, "a").model_dump(mode="json"),
    )
    loader = StateLoader(
        "unused:9092", "any.copy.of.the.topic", REGISTRY, registered_as=ORGANIZATIONS_STATE
    )
    assert loader.decode(envelope.to_bytes()) == _state(org, 2, 5, "a")
    plain = StateLoader("unused:9092", "unregistered", REGISTRY)
    assert plain.decode(envelope.to_bytes()) == _state(org, 2, 5, "a")
