"""Import rules without infrastructure: header mapping in Russian and English, overrides, and
turning a row into raw organization fields."""

from __future__ import annotations

import pytest
from clientele_directory.domain.imports import (
    ImportMode,
    ImportReport,
    RowAction,
    RowReport,
    is_blank,
    map_headers,
    normalize_header,
    parse_mapping,
    parse_row,
    patch_of,
    row_document,
)


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
    assert good.emails() == ["A@x.ru"]
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
    for wrong in ("[1]", "{", '{"a": 1}'):
        with pytest.raises(ValueError, match="mapping"):
            parse_mapping(wrong)


def test_the_report_counts_rows_by_action() -> None:
    report = ImportReport(mode=ImportMode.DRY_RUN)
    report.count(RowReport(row=2, action=RowAction.CREATED))
    report.count(RowReport(row=3, action=RowAction.SKIPPED))
    assert (report.rows, report.created, report.skipped, report.updated) == (2, 1, 1, 0)
