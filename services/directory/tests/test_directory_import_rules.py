"""Import rules without infrastructure: header mapping in Russian and English, overrides, and
turning a row into raw organization fields."""

from __future__ import annotations

from clientele_directory.domain.imports import map_headers, normalize_header, row_document


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
