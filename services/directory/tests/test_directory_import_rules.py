"""Import rules without infrastructure: header mapping in Russian and English, overrides,
turning a row into raw organization fields, repeated rows in a file and matching existing
organizations."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clientele_directory.imports.headers import map_headers, normalize_header
from clientele_directory.imports.rules import (
    FileKeys,
    ImportMode,
    ImportReport,
    KnownOrganizations,
    ParsedRow,
    RowAction,
    RowReport,
    is_blank,
    parse_mapping,
    parse_row,
    patch_against,
    patch_of,
    phone_cell,
    quote_labels,
    row_document,
    split_labels,
)
from clientele_directory.organizations.rules import Organization
from clientele_testkit.import_generator import generate


def test_headers_are_read_in_russian_and_english() -> None:
    headers = ["Наименование", "ИНН", "Телефон", "E-mail", "Статус", "Сегмент", "Ёмкость", None]
    mapping, problems = map_headers(headers, {"segment": "Сегмент", "capacity": "Емкость"})
    assert problems == []
    assert mapping == {
        0: "legal_name",
        1: "inn",
        2: "phones",
        3: "emails",
        4: "status",
        5: "attributes.segment",
        6: "attributes.capacity",
    }
    mapping, _ = map_headers(["Company Name", "TIN", "web site", "Tags"], {})
    assert mapping == {0: "legal_name", 1: "inn", 3: "tags"}
    assert normalize_header("  Юр. адрес: ") == "юр адрес"


def test_overrides_win_and_conflicts_are_reported() -> None:
    mapping, problems = map_headers(
        ["Клиент", "ИНН", "Примечание"], {}, {"Клиент": "legal_name", "ИНН": None}
    )
    assert mapping == {0: "legal_name"}
    assert problems == []
    _, problems = map_headers(["ИНН", "inn"], {})
    assert problems == ["columns 1 and 2 both name 'inn'"]
    _, problems = map_headers(["x"], {}, {"x": "colour"})
    assert problems == ["the mapping names an unknown field 'colour'"]


def test_a_row_becomes_raw_fields_and_attributes() -> None:
    mapping = {
        0: "legal_name",
        1: "inn",
        2: "phones",
        3: "status",
        4: "legal_address",
        5: "attributes.segment",
    }
    fields, attributes = row_document(
        mapping, ["ООО «Ёлка»", "77 0708 3893", "+7 495 1; 8 800 2", "Клиент", "Москва", "Крупный"]
    )
    assert fields == {
        "legal_name": "ООО «Ёлка»",
        "inn": "7707083893",
        "phones": ["+7 495 1", "8 800 2"],
        "status": "client",
        "legal_address": {"text": "Москва"},
    }
    assert attributes == {"segment": "Крупный"}
    assert row_document(mapping, ["Только имя"]) == ({"legal_name": "Только имя"}, {})


def test_a_row_is_checked_like_a_new_organization() -> None:
    mapping = {0: "legal_name", 1: "inn", 2: "phones", 3: "emails"}
    good = parse_row(2, mapping, ["Ромашка", "7707 083 893", "8 495 123-45-67", "A@X.RU"], ["n"])
    assert good.errors == []
    assert good.inn == "7707083893"
    assert good.phones() == ["+74951234567"]
    assert good.emails() == ["a@x.ru"]  # compared in lower case, stored as written
    assert good.given == {"legal_name", "inn", "phones", "emails"}
    assert patch_of(good) == {
        "legal_name": "Ромашка",
        "inn": "7707083893",
        "phones": [{"number": "+74951234567", "kind": "work", "extension": None}],
        "emails": ["A@x.ru"],
    }
    bad = parse_row(3, mapping, [None, "7707083894", "12", "nope"], ["n"])
    assert bad.draft is None
    assert {problem.field for problem in bad.errors} == {"legal_name", "inn", "phones", "emails"}


def test_directions_default_to_the_imports_and_rows_may_name_their_own() -> None:
    mapping = {0: "legal_name", 1: "directions"}
    own = parse_row(2, mapping, ["А", "south; north"], ["east"])
    assert own.draft is not None
    assert own.draft.directions == ["north", "south"]
    default = parse_row(3, mapping, ["Б", None], ["east"])
    assert default.draft is not None
    assert default.draft.directions == ["east"]
    assert "directions" not in default.given


def test_blank_rows_and_mappings() -> None:
    assert is_blank([None, None])
    assert not is_blank([None, "x"])
    assert parse_mapping(None) == {}
    assert parse_mapping('{"Фирма": "legal_name", "x": null}') == {
        "Фирма": "legal_name",
        "x": None,
    }
    for wrong in ("[1]", "{", '{"a": 1}', "[" * 50_000, '{"a": ' * 50_000):
        with pytest.raises(ValueError, match="mapping"):
            parse_mapping(wrong)


def test_the_report_counts_rows_by_action() -> None:
    report = ImportReport(mode=ImportMode.DRY_RUN)
    report.count(RowReport(row=2, action=RowAction.CREATED))
    report.count(RowReport(row=3, action=RowAction.SKIPPED))
    assert (report.rows, report.created, report.skipped, report.updated) == (2, 1, 1, 0)


MAPPING = {0: "legal_name", 1: "inn", 2: "emails", 3: "phones"}


def _row(
    number: int, inn: str | None = None, email: str | None = None, phone: str | None = None
) -> ParsedRow:
    return parse_row(number, MAPPING, [f"Организация {number}", inn, email, phone], ["n"])


def _org(inn: str | None = None, emails: list[str] | None = None, **fields: Any) -> Organization:
    return Organization.model_validate(
        {
            "id": uuid.uuid4(),
            "version": 1,
            "legal_name": "Существующая",
            "inn": inn,
            "emails": emails or [],
            "directions": ["n"],
            **fields,
        }
    )


def test_a_row_repeating_an_earlier_rows_inn_email_or_phone_is_a_duplicate_in_the_file() -> None:
    keys = FileKeys()
    assert keys.check(_row(2, inn="7707083893", email="a@x.ru")) is None
    same_inn = keys.check(_row(3, inn="7707083893"))
    assert same_inn is not None
    assert (same_inn.kind, same_inn.field, same_inn.message) == (
        "duplicate_in_file",
        "inn",
        "the same inn as row 2",
    )
    # another INN sharing the e-mail is another company; a row without an INN is the same one
    assert keys.check(_row(4, inn="500100732259", email="a@x.ru")) is None
    no_inn = keys.check(_row(5, email="a@x.ru"))
    assert no_inn is not None
    assert no_inn.field == "email"
    assert keys.check(_row(6, phone="+7 495 123-45-67")) is None
    assert keys.check(_row(7, inn="7736050003", phone="8 (495) 1234567")) is not None


def test_a_contact_shared_by_several_companies_names_the_row_of_the_same_company() -> None:
    """A key given by rows of three INNs keeps each (ADR 66 keeps one row number per key and
    a list only when companies share it); a repetition names its own company's row."""
    keys = FileKeys()
    inns = ["7707083893", "500100732259", "7736050003"]
    for row, inn in enumerate(inns, start=2):
        assert keys.check(_row(row, inn=inn, phone="+7 495 123-45-67")) is None
    for row, inn in enumerate(inns, start=2):
        again = keys.check(_row(row + 10, inn=inn, email=f"{row}@x.ru", phone="84951234567"))
        assert again is not None
        assert (again.field, again.message) == ("inn", f"the same inn as row {row}")
    # a row without an INN repeats the first row that gave the phone
    bare = keys.check(_row(20, phone="+7 (495) 123 45 67"))
    assert bare is not None
    assert (bare.field, bare.message) == ("phone", "the same phone as row 2")
    assert keys.check(_row(21, inn="7710140679", phone="+7 495 765-43-21")) is None


def test_existing_organizations_match_by_inn_then_email_then_phone() -> None:
    by_inn = _org(inn="7707083893")
    by_mail = _org(emails=["info@x.ru"])
    other_inn = _org(inn="500100732259", emails=["shared@x.ru"])
    by_phone = _org(phones=["+74951234567"])
    known = KnownOrganizations([by_inn, by_mail, other_inn, by_phone])
    org, kind, problem = known.match(_row(2, inn="7707083893", email="info@x.ru"))
    assert (org, kind, problem) == (by_inn, "inn", None)
    org, kind, _ = known.match(_row(3, email="info@x.ru", phone="84951234567"))
    assert (org, kind) == (by_mail, "email")
    org, kind, _ = known.match(_row(4, inn="7736050003", email="shared@x.ru"))
    assert (org, kind) == (None, None)  # the e-mail is another INN's
    org, kind, _ = known.match(_row(5, phone="+7 495 123 45 67"))
    assert (org, kind) == (by_phone, "phone")
    twin = _org(emails=["info@x.ru"])
    known.put(twin)
    org, _, problem = known.match(_row(6, email="info@x.ru"))
    assert org is None
    assert problem is not None
    assert problem.kind == "ambiguous"


def test_e_mails_match_whatever_their_case_in_the_file_and_in_the_base() -> None:
    keys = FileKeys()
    assert keys.check(_row(2, email="Office@X.ru")) is None
    again = keys.check(_row(3, email="OFFICE@x.RU"))
    assert again is not None
    assert again.field == "email"
    stored = _org(emails=["Office@x.ru"])
    known = KnownOrganizations([stored])
    org, kind, _ = known.match(_row(4, email="office@X.RU"))
    assert (org, kind) == (stored, "email")


def test_known_organizations_follow_an_update_of_their_identifiers() -> None:
    org = _org(emails=["old@x.ru"])
    known = KnownOrganizations([org])
    known.put(org.model_copy(update={"emails": ["new@x.ru"], "inn": "7707083893"}))
    assert known.match(_row(2, email="old@x.ru")) == (None, None, None)
    found, kind, _ = known.match(_row(3, inn="7707083893"))
    assert found is not None
    assert (found.id, kind) == (org.id, "inn")


def test_an_exported_row_reads_back_as_it_was_written() -> None:
    mapping = {0: "id", 1: "legal_name", 2: "phones", 3: "sites", 4: "tags", 5: "industry"}
    org_id = uuid.uuid4()
    labels = ["опт, розница", "a;b", '"кавычки"', "vip"]
    phones = "; ".join(
        [
            phone_cell("+74955005550", "work", "12"),
            phone_cell("+79161234567", "mobile", None),
            phone_cell("+74955005551", "fax", None),
        ]
    )
    row = [str(org_id), "'=Формула", phones, "a.ru; b.ru, c.ru", "; ".join(quote_labels(labels))]
    parsed = parse_row(2, mapping, [*row, "'-минус"], ["n"])
    assert parsed.errors == []
    assert parsed.id == org_id
    assert parsed.draft is not None
    assert parsed.draft.legal_name == "=Формула"  # the export's formula guard is dropped
    assert parsed.draft.industry == "-минус"
    assert [(p.number, p.kind.value, p.extension) for p in parsed.draft.phones] == [
        ("+74955005550", "work", "12"),
        ("+79161234567", "mobile", None),
        ("+74955005551", "fax", None),
    ]
    assert parsed.draft.sites == ["https://a.ru", "https://b.ru", "https://c.ru"]
    assert parsed.draft.tags == labels
    assert "id" not in parsed.given
    assert split_labels("a, b\nc") == ["a, b", "c"]


def test_internal_extensions_and_bad_ids_in_a_row() -> None:
    mapping = {0: "id", 1: "legal_name", 2: "phones"}
    good = parse_row(2, mapping, [None, "Ромашка", "+7 495 123-45-67 вн. 12"], ["n"])
    assert good.draft is not None
    assert [(p.number, p.extension) for p in good.draft.phones] == [("+74951234567", "12")]
    bad = parse_row(3, mapping, ["не id", "Ромашка", None], ["n"])
    assert bad.draft is None
    assert [(e.field, e.kind) for e in bad.errors] == [("id", "uuid")]


def test_a_row_naming_an_id_matches_that_organization_or_none() -> None:
    org = _org(inn="7707083893")
    known = KnownOrganizations([org])
    mapping = {0: "id", 1: "legal_name", 2: "inn"}
    named = parse_row(2, mapping, [str(org.id), "Другое имя", None], ["n"])
    assert known.match(named) == (org, "id", None)
    unknown = parse_row(3, mapping, [str(uuid.uuid4()), "Ромашка", "7707083893"], ["n"])
    found, _, problem = known.match(unknown)
    assert found is None
    assert problem is not None
    assert problem.kind == "unknown_id"


def test_an_update_adds_to_lists_keeps_address_parts_or_replaces_when_told() -> None:
    current = _org(
        emails=["Office@x.ru"],
        phones=[{"number": "+79161234567", "kind": "mobile"}],
        tags=["VIP"],
        legal_address={"text": "Москва, ул. Ленина, 1", "postal_code": "101000", "city": "Москва"},
    ).fields()
    mapping = {0: "legal_name", 1: "emails", 2: "phones", 3: "tags", 4: "legal_address"}
    row = ["Ромашка", "office@x.ru; new@x.ru", "+7 495 123-45-67", "vip; опт", None]
    parsed = parse_row(2, mapping, [*row[:4], "Москва, ул. Ленина, 1"], ["n"])
    merged = patch_against(parsed, current)
    assert merged["emails"] == ["Office@x.ru", "new@x.ru"]
    assert [p["number"] for p in merged["phones"]] == ["+79161234567", "+74951234567"]
    assert merged["phones"][0]["kind"] == "mobile"
    assert merged["tags"] == ["VIP", "опт"]
    assert "legal_address" not in merged  # the same text: postcode and city stay
    replaced = patch_against(parsed, current, replace_lists=True)
    assert replaced["emails"] == ["office@x.ru", "new@x.ru"]
    assert replaced["tags"] == ["vip", "опт"]
    moved = parse_row(3, mapping, [*row[:4], "Казань, ул. Баумана, 2"], ["n"])
    assert patch_against(moved, current)["legal_address"]["text"] == "Казань, ул. Баумана, 2"


def test_a_generated_1c_file_is_read_as_its_ground_truth_says() -> None:
    file = generate(1500)
    assert generate(1500).rows == file.rows  # seeded
    mapping, problems = map_headers(file.header, {})
    assert problems == []
    assert set(mapping.values()) >= {"legal_name", "inn", "kpp", "ogrn", "phones", "emails"}
    keys = FileKeys()
    outcomes: dict[str, int] = {}
    for number, row in enumerate(file.rows, start=2):
        truth = file.truth[number]
        outcomes[truth.outcome] = outcomes.get(truth.outcome, 0) + 1
        parsed = parse_row(number, mapping, row, ["n"])
        if truth.outcome == "error":
            assert truth.field in {e.field for e in parsed.errors}, (number, row, parsed.errors)
            continue
        assert parsed.errors == [], (number, row, parsed.errors)
        duplicate = keys.check(parsed)
        if truth.outcome == "duplicate":
            assert duplicate is not None, (number, row)
            assert duplicate.message == f"the same {truth.field} as row {truth.earlier}"
        else:
            assert duplicate is None, (number, row, duplicate)
    assert min(outcomes.values()) >= 20  # every kind of row is there
    remainders = {int(r[3][:-1]) % 13 for r in file.rows if r[3] and len(r[3]) == 15}
    assert {10, 11, 12} <= remainders
