"""Import messages say what is wrong (an INN that lost its leading zero, a number in scientific
notation, a date in an INN cell, a phone's extension kept), in the caller's language: Russian
messages under the same English codes (ADR 48)."""

from __future__ import annotations

import pytest
from clientele_directory.imports.headers import map_headers
from clientele_directory.imports.messages import (
    EN,
    RU,
    detail_in,
    language,
    line_in,
    problem_in,
    russian,
)
from clientele_directory.imports.rules import (
    FileKeys,
    RowAction,
    RowProblem,
    RowReport,
    parse_row,
)
from clientele_testkit.import_generator import generate

MAPPING = {0: "legal_name", 1: "inn", 2: "phones", 3: "kpp", 4: "ogrn"}


def _inn_problem(cell: str) -> RowProblem:
    parsed = parse_row(2, MAPPING, ["ООО «Альфа»", cell], ["north"])
    [problem] = parsed.errors
    assert (problem.field, problem.kind) == ("inn", "inn")
    return problem


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("ru-RU,ru;q=0.9,en;q=0.8", RU),
        ("en-US,en;q=0.9,ru;q=0.8", EN),
        ("de-DE, ru;q=0.5", RU),
        ("fr", EN),
        ("ru;q=0", EN),
        ("ru;q=abc", EN),
        ("", EN),
        (None, EN),
    ],
)
def test_the_language_is_the_callers_preferred_one_spoken(
    header: str | None, expected: str
) -> None:
    assert language(header) == expected


def test_an_inn_that_lost_its_leading_zero_says_so() -> None:
    problem = _inn_problem("773456789")  # 0773456789 as Excel keeps a number
    assert problem.message.startswith("INN has 9 digits: a leading zero lost by Excel?")
    assert problem_in(problem, RU).message.startswith("В ИНН 9 цифр: Excel потерял ведущий ноль?")
    assert problem_in(problem, RU).kind == "inn"


@pytest.mark.parametrize("cell", ["7,707083893E+09", "7.707083893e+09", "7,70708E+09"])
def test_an_inn_in_scientific_notation_says_excel_made_it_a_number(cell: str) -> None:
    problem = _inn_problem(cell)
    assert problem.message == (
        f"INN {cell} is a number in scientific notation: the cell was turned into a number by "
        "Excel (format the column as text)"
    )
    assert "Excel превратил ячейку в число" in problem_in(problem, RU).message


@pytest.mark.parametrize("cell", ["2024-03-01", "2024-03-01T00:00:00", "01.03.2024", "1/3/24"])
def test_a_date_in_an_inn_cell_says_excel_made_it_a_date(cell: str) -> None:
    problem = _inn_problem(cell)
    assert problem.message.startswith(f"INN holds a date ({cell}): the cell was turned into a date")
    assert "Excel превратил ячейку в дату" in problem_in(problem, RU).message


def test_a_kpp_that_lost_its_leading_zero_says_so() -> None:
    parsed = parse_row(2, MAPPING, ["ООО «Альфа»", "7707083893", None, "27401001"], ["north"])
    [problem] = parsed.errors
    assert problem.field == "kpp"
    assert problem.message.startswith("KPP has 8 digits: a leading zero lost by Excel?")


@pytest.mark.parametrize(
    ("cell", "extension"),
    [("+7 495 123-45-67 вн. 12", "12"), ("8 (495) 123-45-67 доб. 123", "123")],
)
def test_phone_extensions_are_kept(cell: str, extension: str) -> None:
    parsed = parse_row(2, MAPPING, ["ООО «Альфа»", None, cell], ["north"])
    assert parsed.errors == []
    assert parsed.draft is not None
    [phone] = parsed.draft.phones
    assert (phone.number, phone.extension) == ("+74951234567", extension)


def test_every_problem_of_the_generated_1c_file_has_its_russian() -> None:
    file = generate(1500)
    mapping, _ = map_headers(file.header, {})
    keys = FileKeys()
    messages = set()
    for number, row in enumerate(file.rows, start=2):
        parsed = parse_row(number, mapping, row, ["north"])
        problems = [*parsed.errors]
        if parsed.draft is not None and (dup := keys.check(parsed)) is not None:
            problems.append(dup)
        messages |= {problem.message for problem in problems}
    assert len(messages) > 5
    assert {message: russian(message) for message in messages if russian(message) is None} == {}


def test_a_report_line_keeps_its_codes_in_russian() -> None:
    line = RowReport(
        row=7,
        action=RowAction.SKIPPED,
        errors=[
            RowProblem(field="inn", message="the same inn as row 3", kind="duplicate_in_file"),
            RowProblem(field="emails", message="Something odd.", kind="email"),
        ],
        warnings=[
            RowProblem(message="matches the unwanted counterparty register", kind="unwanted")
        ],
    )
    translated = line_in(line, RU)
    assert [(p.field, p.kind, p.message) for p in translated.errors] == [
        ("inn", "duplicate_in_file", "Тот же ИНН, что в строке 3"),
        ("emails", "email", "неверный e-mail: Something odd."),
    ]
    assert translated.warnings[0].message == "Совпадает с реестром нежелательных контрагентов"
    assert line_in(line, EN) == line


def test_a_file_problem_is_translated_with_its_line() -> None:
    detail = (
        "The file cannot be read: line 3002 is not UTF-8 text (byte 0xC1 at character 17), "
        "while the rest of the file is UTF-8: correct the line or save the file as UTF-8 again; "
        "nothing was imported."
    )
    assert detail_in(detail, RU) == (
        "Файл не прочитан: строка 3002 не в кодировке UTF-8 (байт 0xC1, символ 17), а весь "
        "остальной файл в UTF-8: исправьте строку или сохраните файл в UTF-8 заново; ничего не "
        "импортировано."
    )
    assert detail_in("something new", RU) == "something new"
