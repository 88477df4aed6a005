"""Organization rules without infrastructure: identifiers, contacts, patches and their diffs."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from clientele_directory.organizations.rules import (
    Organization,
    OrganizationDraft,
    OrganizationPatch,
    PatchRejected,
    apply_patch,
    changes_between,
    created_changes,
    creation_changes_of,
    merge_fields,
    moved_directions,
    ogrn_is_valid,
    storage_values,
    valid_inn,
)
from clientele_directory.publishing import created_payload, organization_created
from clientele_directory.state import created_state_payload, organization_state
from clientele_directory.tables import outbox as outbox_table
from clientele_directory.values import email_domains, normalize_domain, normalize_phone
from clientele_shared.events.catalog import REGISTRY
from clientele_shared.events.envelope import Actor
from clientele_shared.events.outbox import Outbox
from clientele_shared.http.concurrency import etag, versions_in_if_match
from pydantic import ValidationError
from pydantic_core import from_json, to_json
from stdnum.ru import inn as ru_inn

LEGAL_INN, LEGAL_KPP, LEGAL_OGRN = "7707083893", "773601001", "1027700132195"
SOLE_TRADER_INN, OGRNIP = "500100732259", "304500116000157"


def _draft(**fields: Any) -> OrganizationDraft:
    return OrganizationDraft.model_validate(
        {"legal_name": "ООО «Ромашка»", "directions": ["north"]} | fields
    )


def _stored(**fields: Any) -> Organization:
    draft = _draft(**fields)
    return Organization(**draft.model_dump(), id=uuid.uuid4(), version=3)


def _errors(exc: pytest.ExceptionInfo[ValidationError]) -> str:
    return " | ".join(error["msg"] for error in exc.value.errors())


def test_russian_identifiers_are_checked_and_compacted() -> None:
    org = _draft(inn=f" {LEGAL_INN} ", kpp="7736 01001", ogrn=LEGAL_OGRN)
    assert (org.inn, org.kpp, org.ogrn) == (LEGAL_INN, LEGAL_KPP, LEGAL_OGRN)
    sole_trader = _draft(inn=SOLE_TRADER_INN, ogrn=OGRNIP)
    assert sole_trader.ogrn == OGRNIP


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"inn": "7707083894"}, "INN has a wrong checksum"),
        ({"inn": "77070838"}, "INN has 8 characters: 10 or 12 digits expected"),
        ({"inn": "707083893"}, "INN has 9 digits: a leading zero lost by Excel?"),
        ({"inn": "50100732259"}, "INN has 11 digits: a leading zero lost by Excel?"),
        ({"inn": "7,707083893E+09"}, "the cell was turned into a number by Excel"),
        ({"ogrn": "1027700132196"}, "OGRN has a wrong length or checksum"),
        ({"inn": LEGAL_INN, "kpp": "77360100"}, "KPP has 8 digits: a leading zero lost by Excel?"),
        ({"kpp": LEGAL_KPP}, "KPP needs the 10-digit INN"),
        ({"inn": SOLE_TRADER_INN, "kpp": LEGAL_KPP}, "KPP needs the 10-digit INN"),
        ({"inn": LEGAL_INN, "ogrn": OGRNIP}, "10-digit INN goes with a 13-digit OGRN"),
        ({"inn": SOLE_TRADER_INN, "ogrn": LEGAL_OGRN}, "12-digit INN goes with a 15-digit OGRN"),
        ({"status": "friend"}, "Input should be 'prospect'"),
        ({"country": "XX"}, "ISO 3166-1"),
        ({"directions": []}, "at least 1 item"),
        ({"directions": ["North America"]}, "should match pattern"),
        ({"legal_name": "   "}, "at least 1 character"),
        ({"legal_name": "a\x00b"}, "control"),
        ({"legal_name": "x" * 501}, "at most 500 characters"),
        ({"phones": ["12345"]}, "not a valid phone number"),
        ({"phones": ["call me"]}, "not a phone number"),
        ({"emails": ["no-at-sign"]}, "@-sign"),
        ({"sites": ["not a site"]}, "web address"),
        ({"sites": ["ftp://example.com"]}, "web address"),
        ({"tags": ["x"] * 51}, "at most 50 items"),
        ({"legal_address": {"text": "Москва", "postal_code": "<script>"}}, "should match"),
        ({"owner": "me"}, "Extra inputs are not permitted"),
    ],
)
def test_bad_organizations_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        _draft(**fields)
    assert message in _errors(exc)


def test_a_foreign_company_needs_no_russian_identifiers() -> None:
    org = _draft(legal_name="Müller GmbH", country="de", foreign_tax_id="DE123456789")
    assert org.country == "DE"
    assert org.inn is None


def test_contacts_are_normalized_and_deduplicated() -> None:
    org = _draft(
        phones=["8 (495) 500-55-50 доб. 123", {"number": "+7 495 500 55 50", "kind": "fax"}],
        emails=["Info@Example.COM", "info@example.com", "sales@пример.рф"],
        sites=["Example.com/about", "https://example.com/about"],
        tags=["VIP", "vip", " Опт "],
        directions=["south", "north", "north"],
    )
    assert [phone.model_dump(mode="json") for phone in org.phones] == [
        {"number": "+74955005550", "kind": "work", "extension": "123"},
        {"number": "+74955005550", "kind": "fax", "extension": None},
    ]
    assert org.emails[0].endswith("@example.com")
    assert len(org.emails) == 2
    assert org.sites == ["https://example.com/about"]
    assert org.tags == ["VIP", "Опт"]
    assert org.directions == ["north", "south"]
    assert storage_values(org)["email_domains"] == sorted(
        {"example.com", org.emails[1].rpartition("@")[2]}
    )


def test_phone_normalization() -> None:
    assert normalize_phone("+1 650 253 0000") == ("+16502530000", None)
    assert normalize_phone("8 912 345-67-89") == ("+79123456789", None)
    with pytest.raises(ValueError, match="at most 64"):
        normalize_phone("1" * 65)


def test_domains_and_email_domains() -> None:
    assert normalize_domain("@Spam.Example.") == "spam.example"
    assert normalize_domain("пример.рф") == "xn--e1afmkfd.xn--p1ai"
    with pytest.raises(ValueError, match="domain"):
        normalize_domain("not a domain")
    assert email_domains(["a@x.ru", "b@x.ru", "c@y.ru"]) == ["x.ru", "y.ru"]


def test_patch_changes_only_what_it_names_and_null_clears() -> None:
    org = _stored(inn=LEGAL_INN, kpp=LEGAL_KPP, tags=["a"])
    patched = apply_patch(org, OrganizationPatch.model_validate({"kpp": None, "tags": ["a", "b"]}))
    assert changes_between(org, patched) == {
        "kpp": {"old": LEGAL_KPP, "new": None},
        "tags": {"old": ["a"], "new": ["a", "b"]},
    }
    same = apply_patch(org, OrganizationPatch.model_validate({"legal_name": " ООО «Ромашка» "}))
    assert changes_between(org, same) == {}


def test_patch_is_validated_as_a_whole() -> None:
    org = _stored(inn=LEGAL_INN, kpp=LEGAL_KPP)
    with pytest.raises(PatchRejected) as exc:  # removing the INN orphans the KPP
        apply_patch(org, OrganizationPatch.model_validate({"inn": None}))
    assert "KPP needs" in exc.value.errors[0]["msg"]
    for required in ("legal_name", "status", "directions"):
        with pytest.raises(PatchRejected):
            apply_patch(org, OrganizationPatch.model_validate({required: None}))
    with pytest.raises(ValidationError):
        OrganizationPatch.model_validate({"version": 7})


def test_creation_changes_list_the_fields_given() -> None:
    org = _stored(inn=LEGAL_INN, tags=["a"])
    changes = created_changes(org)
    assert changes["inn"] == {"old": None, "new": LEGAL_INN}
    assert changes["tags"] == {"old": None, "new": ["a"]}
    assert "kpp" not in changes
    assert "phones" not in changes


def test_moving_directions() -> None:
    assert moved_directions(["north"], ["north", "south"]) == {"south"}
    assert moved_directions(["north", "west"], ["north"]) == {"west"}
    assert moved_directions(["north"], ["north"]) == set()


@pytest.mark.parametrize(
    ("header", "versions"),
    [
        ('W/"3"', {3}),
        ('"3"', {3}),
        ('W/"3", W/"4"', {3, 4}),
        ("*", set()),
        ("3", set()),
        ('W/"abc"', set()),
    ],
)
def test_if_match_parsing(header: str, versions: set[int]) -> None:
    assert versions_in_if_match(header) == versions
    assert etag(3) == 'W/"3"'


def test_stored_values_are_not_rechecked_against_library_data() -> None:
    """A numbering plan or e-mail rule that changes later never makes a stored record
    unreadable; new input is still checked."""
    from clientele_directory.values import STORED

    stored = {
        "legal_name": "Старая",
        "directions": ["north"],
        "phones": [{"number": "+70000000000", "kind": "work", "extension": None}],
        "emails": ["legacy@@example"],
        "id": str(uuid.uuid4()),
        "version": 1,
    }
    org = Organization.model_validate(stored, context=STORED)
    assert org.phones[0].number == "+70000000000"
    assert org.emails == ["legacy@@example"]
    with pytest.raises(ValidationError):
        Organization.model_validate(stored)


def _record(**fields: Any) -> Organization:
    return Organization.model_validate(
        {"id": uuid.uuid4(), "version": 1, "directions": ["north"], **fields}
    )


def test_merge_keeps_the_survivor_fills_gaps_unites_lists_and_takes_what_is_chosen() -> None:
    survivor = _record(
        legal_name="Ромашка", inn="7707083893", tags=["vip"], attributes={"segment": "A"}
    )
    other = _record(
        legal_name="ООО «Ромашка»",
        industry="Цветы",
        tags=["old", "vip"],
        directions=["south"],
        attributes={"segment": "B", "size": 5},
    )
    merged, patch = merge_fields(survivor, other, [], {})
    assert patch == {}
    assert merged.legal_name == "Ромашка"
    assert merged.inn == "7707083893"
    assert merged.industry == "Цветы"
    assert merged.tags == ["vip", "old"]
    assert merged.directions == ["north", "south"]
    assert merged.attributes == {"segment": "A", "size": 5}
    chosen, patch = merge_fields(
        survivor,
        other,
        ["legal_name", "attributes.segment"],
        {"status": "client", "tags": [], "attributes": {"size": None}},
    )
    assert patch == {"segment": "B", "size": None}  # checked against the definitions later
    assert chosen.legal_name == "ООО «Ромашка»"
    assert chosen.status == "client"
    assert chosen.tags == []
    with pytest.raises(PatchRejected):
        merge_fields(survivor, other, ["nonsense"], {})
    with pytest.raises(PatchRejected):
        merge_fields(survivor, other, ["attributes."], {"attributes": 5})
    with pytest.raises(PatchRejected):
        merge_fields(survivor, other, [], {"inn": "7707083894"})


@pytest.mark.parametrize(
    ("ogrnip", "remainder"),
    [
        ("304500116000180", 10),  # first 14 digits mod 13 = 10: check digit 0
        ("304500116000191", 11),
        ("304500116000202", 12),
        (OGRNIP, None),
        # published by sole traders on their sites; python-stdnum 2.2 refuses both
        ("312091715800012", 12),
        ("323570000015061", 11),
    ],
)
def test_an_ogrnip_keeps_the_last_digit_of_its_remainder(
    ogrnip: str, remainder: int | None
) -> None:
    if remainder is not None:
        assert int(ogrnip[:-1]) % 13 == remainder
    assert ogrn_is_valid(ogrnip)
    assert _draft(inn=SOLE_TRADER_INN, ogrn=ogrnip).ogrn == ogrnip
    wrong = ogrnip[:-1] + str((int(ogrnip[-1]) + 1) % 10)
    assert not ogrn_is_valid(wrong)


@pytest.mark.parametrize(
    ("name", "refused"),
    [
        ("ООО «Ромашка»", False),
        ("Zero\u200bwidth", False),  # a format character (Cf): not printable, yet allowed
        ("No\u00a0break", False),  # a no-break space (Zs)
        ("Nul\x00byte", True),
        ("Next\u0085line", True),  # a C1 control character
        ("Private\ue000use", True),  # Co
        ("Unassigned\U000e0080", True),  # Cn
        ("Two\nlines", True),
    ],
)
def test_a_name_refuses_control_private_and_unassigned_characters(name: str, refused: bool) -> None:
    if refused:
        with pytest.raises(ValidationError, match="control or unassigned"):
            _draft(legal_name=name)
    else:
        assert _draft(legal_name=name).legal_name == name


def test_inn_checked_by_its_check_digits_agrees_with_stdnum() -> None:
    numbers = [
        LEGAL_INN,
        SOLE_TRADER_INN,
        "7707083894",
        "500100732250",
        " 7707083893",
        "77 07083893",
    ]
    numbers += [f"{n:010d}" for n in range(7707083880, 7707083900)]
    numbers += ["７７０７０８３８９３", "٧٧٠٧٠٨٣٨٩٣"]  # digits, but not ASCII ones
    for number in numbers:
        if ru_inn.is_valid(number):
            assert valid_inn(number) == ru_inn.compact(number)
        else:
            with pytest.raises(ValueError, match="INN"):
                valid_inn(number)


def test_a_bulk_writers_payloads_are_what_the_models_make() -> None:
    """The import builds a new organization's payloads from its storage values without a model
    (ADR 70): they dump to what ``organization_created`` and ``organization_state`` make,
    and its audit changes are ``created_changes``; a field either side forgets fails here."""
    outbox = Outbox("directory", REGISTRY, outbox_table)
    actor = Actor(subject="importer", kind="user")
    now = datetime(2026, 12, 7, 5, 22, 30, 120, tzinfo=UTC)
    for fields in (
        {},
        {
            "short_name": "Ромашка",
            "inn": LEGAL_INN,
            "kpp": LEGAL_KPP,
            "ogrn": LEGAL_OGRN,
            "legal_address": {"text": "125009, г. Москва, ул. Тверская", "postal_code": "125009"},
            "phones": [
                "8 (495) 500-55-50 доб. 123",
                {"number": "+7 912 555 01 02", "kind": "mobile"},
            ],
            "emails": ["Info@Example.COM", "sales@пример.рф"],
            "sites": ["example.com"],
            "industry": "Опт",
            "categories": ["A"],
            "tags": ["VIP", "опт"],
            "responsible_employee_id": uuid.uuid4(),
            "attributes": {"size": 12.5, "vip": True, "note": "«крупный»"},
            "directions": ["south", "north"],
        },
    ):
        for blocked in (False, True):
            org = _stored(**fields).model_copy(
                update={"version": 1, "blocked": blocked, "created_at": now, "updated_at": now}
            )
            values = storage_values(org)
            built = from_json(to_json(created_payload(org.id, values, blocked)))
            assert built == organization_created(outbox, org, actor).payload
            state = from_json(to_json(created_state_payload(org.id, values, blocked, 7, now)))
            assert state == organization_state(outbox, org, 7).payload
            assert from_json(to_json(creation_changes_of(values, values["attributes"]))) == (
                from_json(to_json(created_changes(org)))
            )
