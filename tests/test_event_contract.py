"""The published event contract (docs/asyncapi) is the code's, and a published (type, version)
cannot change in a way that breaks its readers."""

from __future__ import annotations

import json
from pathlib import Path

from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.contract import breaches, check, write
from clientele_shared.events.registry import EventSpec, Registry, Topic
from clientele_shared.events.schemas.base import Payload

DOCS = Path(__file__).parents[1] / "docs" / "asyncapi"


def test_the_committed_contract_is_the_codes() -> None:
    differing, broken = check(REGISTRY, DOCS)
    assert broken == []
    assert differing == [], "run `make contract` and commit docs/asyncapi"


class V1(Payload):
    deal_id: str
    amount: str
    note: str | None = None


class AddsOptional(Payload):
    deal_id: str
    amount: str
    note: str | None = None
    currency: str = "RUB"


class Breaking(Payload):
    deal_id: int
    note: str
    stage: str


def _registry(payload: type[Payload]) -> Registry:
    topic = Topic("t.deals", "pipeline", frozenset({"erp"}))
    return Registry.of([topic], [EventSpec("pipeline.deal.won", 1, "t.deals", payload)])


def test_an_optional_field_may_be_added_to_a_published_version(tmp_path: Path) -> None:
    assert write(_registry(V1), tmp_path) == []
    assert write(_registry(AddsOptional), tmp_path) == []
    written = json.loads((tmp_path / "schemas" / "pipeline.deal.won.v1.json").read_text())
    assert "currency" in written["properties"]


def test_a_breaking_change_of_a_published_version_is_refused(tmp_path: Path) -> None:
    assert write(_registry(V1), tmp_path) == []
    before = (tmp_path / "schemas" / "pipeline.deal.won.v1.json").read_text()
    reasons = sorted(breach.reason for breach in write(_registry(Breaking), tmp_path))
    assert reasons == [
        "field 'amount' removed",
        "field 'deal_id' changed its type or constraints",
        "field 'note' changed its type or constraints",
        "field 'note' is newly required",
        "field 'stage' is newly required",
    ]
    assert (tmp_path / "schemas" / "pipeline.deal.won.v1.json").read_text() == before


def test_a_published_version_may_not_disappear(tmp_path: Path) -> None:
    assert write(_registry(V1), tmp_path) == []
    empty = Registry.of([Topic("t.deals", "pipeline", frozenset())], [])
    _, broken = check(empty, tmp_path)
    assert [b.reason for b in broken] == ["a published schema version was removed"]


def test_the_asyncapi_document_names_topics_and_messages() -> None:
    document = json.loads((DOCS / "directory.asyncapi.json").read_text())
    assert document["asyncapi"].startswith("3.")
    channel = document["channels"]["clientele_directory_organizations"]
    assert channel["address"] == "clientele.directory.organizations"
    assert "directory_organization_created_v1" in channel["messages"]
    assert not list(breaches("x", {"properties": {}}, {"properties": {"a": {"type": "string"}}}))


def test_a_marketing_events_kind_as_a_code_is_a_new_version_beside_the_old() -> None:
    """Kinds became a catalogue (ADR 52): v1's fixed list could not take a code in place, so
    ``created`` and ``restored`` got v2, and v1 stays published for the events already sent."""
    schemas = DOCS / "schemas"
    for event in ("campaigns.campaign.created", "campaigns.campaign.restored"):
        v1 = json.loads((schemas / f"{event}.v1.json").read_text())
        v2 = json.loads((schemas / f"{event}.v2.json").read_text())
        assert v1["properties"]["kind"]["enum"][0] == "seminar"
        assert v2["properties"]["kind"]["type"] == "string"
        assert "enum" not in v2["properties"]["kind"]
        assert {"kind", "kind_name_ru", "kind_name_en"} <= set(v2["required"])
        assert [b.reason for b in breaches(event, v1, v2)] == [
            "field 'kind' changed its type or constraints",
            "field 'kind_name_en' is newly required",
            "field 'kind_name_ru' is newly required",
        ]
        assert REGISTRY.latest(event).version == 2
