"""Headers as files come (ADR 48): 1C two-row headers, a title row above the header, data on
another sheet than the first, Bitrix24 and amoCRM exports, 1C's «Адрес электронной почты» and
«Контактный телефон»; the report says which sheet and row the header was read from; a contacts
(persons) export is named as such, not read as companies (ADR 58)."""

from __future__ import annotations

import io
import uuid

import pytest
from clientele_directory.imports.headers import Header, find_header, map_headers
from clientele_directory.imports.messages import russian
from clientele_directory.imports.reader import Opening, PersonsFile, ReadPlan, parsed_chunks
from clientele_directory.imports.rules import ParsedRow, Staff, parse_row
from clientele_directory.tabular import TabularError
from openpyxl import Workbook

INN = "7707083893"


def _plan(filename: str) -> ReadPlan:
    return ReadPlan(
        filename=filename,
        overrides={},
        labels={},
        directions=["north"],
        max_rows=1000,
        too_many="more than 1,000 rows",
        chunk_rows=100,
    )


def _xlsx(sheets: dict[str, list[list[object]]]) -> io.BytesIO:
    workbook = Workbook()
    assert workbook.active is not None
    workbook.remove(workbook.active)
    for title, rows in sheets.items():
        sheet = workbook.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    workbook.save(out)
    out.seek(0)
    return out


def _read(file: io.BytesIO, filename: str = "base.xlsx") -> tuple[Opening, list[ParsedRow]]:
    opened: list[Opening] = []
    plan = _plan(filename)
    rows = [row for chunk in parsed_chunks(file, plan, opened.append) for row in chunk]
    return opened[0], rows


def test_1c_headers_for_phone_and_email_are_read() -> None:
    mapping, problems = map_headers(
        ["Наименование", "ИНН", "Контактный телефон", "Адрес электронной почты"], {}
    )
    assert problems == []
    assert mapping == {0: "legal_name", 1: "inn", 2: "phones", 3: "emails"}


def test_bitrix24_company_export_headers() -> None:
    headers = [
        "ID",
        "Название компании",
        "Тип компании",
        "Рабочий телефон",
        "Мобильный телефон",
        "Рабочий e-mail",
        "Частный e-mail",
        "Корпоративный сайт",
        "Адрес",
        "Ответственный",
        "Комментарий",
    ]
    mapping, problems = map_headers(headers, {})
    assert problems == []  # two phone and two e-mail columns are put together, not refused
    assert mapping == {
        0: "id",
        1: "legal_name",
        3: "phones",
        4: "phones.mobile",
        5: "emails",
        6: "emails",
        7: "sites",
        8: "actual_address",
        9: "responsible_employee_id",
    }
    row = ["17", "ООО «Вектор»", "Клиент", "+7 495 123-45-67", "+7 912 000-00-01"]
    row += ["office@vector.ru", "boss@vector.ru", "vector.ru", "Москва", "Анна Смирнова", None]
    parsed = parse_row(2, mapping, row, ["north"])
    assert parsed.errors == []
    assert parsed.id is None  # Bitrix24's own number, not ours
    assert parsed.draft is not None
    phones = [(p.number, p.kind) for p in parsed.draft.phones]
    assert phones == [("+74951234567", "work"), ("+79120000001", "mobile")]
    assert parsed.draft.emails == ["office@vector.ru", "boss@vector.ru"]
    assert parsed.responsible == "Анна Смирнова"
    assert "responsible_employee_id" in parsed.given


def test_amocrm_company_export_headers() -> None:
    headers = ["ID", "Название", "Ответственный", "Теги", "Рабочий телефон", "Рабочий email"]
    headers += ["Web", "Адрес", "Факс"]
    mapping, problems = map_headers(headers, {})
    assert problems == []
    assert set(mapping.values()) == {
        "id",
        "legal_name",
        "responsible_employee_id",
        "tags",
        "phones",
        "emails",
        "sites",
        "actual_address",
        "phones.fax",
    }


def test_a_title_row_above_the_header_is_passed_over() -> None:
    rows: list[list[str | None]] = [
        ["Контрагенты на 01.12.2026"],
        [],
        ["Наименование", "ИНН", "Телефон"],
        ["ООО «Альфа»", INN, None],
    ]
    assert find_header(rows, {}) == Header(["Наименование", "ИНН", "Телефон"], 3)


def test_1c_two_row_header_puts_groups_and_names_together() -> None:
    rows: list[list[str | None]] = [
        ["Наименование", "ИНН", "Контактная информация", None, "Адрес", None],
        [None, None, "Телефон", "Адрес электронной почты", "Юридический", "Почтовый"],
        ["ООО «Альфа»", INN, "+7 495 123-45-67", "a@alfa.ru", "Москва", "Москва, а/я 1"],
    ]
    header = find_header(rows, {})
    assert header is not None
    assert (header.row, header.rows) == (1, 2)
    mapping, problems = map_headers(header.names, {})
    assert problems == []
    assert mapping == {
        0: "legal_name",
        1: "inn",
        2: "phones",
        3: "emails",
        4: "legal_address",
        5: "postal_address",
    }


def test_a_data_row_is_not_taken_for_a_second_header_row() -> None:
    rows: list[list[str | None]] = [["Наименование", "ИНН"], ["Телефон", INN]]
    assert find_header(rows, {}) == Header(["Наименование", "ИНН"], 1)


def test_no_header_naming_the_organization_is_none() -> None:
    assert find_header([["Цвет", "Размер"], ["красный", "XL"]], {}) is None


def test_data_on_the_second_sheet_with_a_title_and_a_two_row_header() -> None:
    file = _xlsx(
        {
            "Инструкция": [["Выгрузка из 1С: Управление торговлей"], ["Данные на листе 2"]],
            "Контрагенты": [
                ["Список контрагентов"],
                ["Наименование", "ИНН", "Контактная информация", None],
                [None, None, "Контактный телефон", "Адрес электронной почты"],
                ["ООО «Альфа»", INN, "+7 495 123-45-67", "a@alfa.ru"],
                [],
                ["ООО «Бета»", None, None, "b@beta.ru"],
            ],
        }
    )
    opening, rows = _read(file)
    assert opening.source == {"sheet": "Контрагенты", "header_row": 2, "header_rows": 2}
    assert opening.rows == 3  # rows 4 to 6, the blank one too
    assert [row.number for row in rows] == [4, 6]  # the file's row numbers
    assert rows[0].draft is not None
    assert rows[0].draft.inn == INN
    assert rows[0].draft.emails == ["a@alfa.ru"]
    assert rows[1].draft is not None
    assert rows[1].draft.legal_name == "ООО «Бета»"


def test_a_csv_report_names_its_encoding_and_header_row() -> None:
    text = "Контрагенты, выгрузка\r\n\r\nНаименование;ИНН;Адрес\r\nООО «Альфа»;{};Москва, ул. 1\r\n"
    opening, rows = _read(io.BytesIO(text.format(INN).encode("cp1251")), "base.csv")
    assert opening.source == {"header_row": 3, "header_rows": 1, "encoding": "Windows-1251"}
    assert [row.number for row in rows] == [4]
    assert rows[0].draft is not None
    assert rows[0].draft.legal_name == "ООО «Альфа»"


def test_a_responsible_is_found_by_name_in_any_order_or_by_email() -> None:
    anna, ivan, other_ivan = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    staff = Staff(
        [
            (anna, "Анна Смирнова", "anna@corp.ru"),
            (ivan, "Иван Петров", "ivan@corp.ru"),
            (other_ivan, "Иван Сидоров", "sidorov@corp.ru"),
        ]
    )
    assert staff.find("Смирнова Анна") == (anna, None)
    assert staff.find("Петров Иван Сергеевич") == (ivan, None)  # 1C writes the patronymic
    assert staff.find("IVAN@corp.ru") == (ivan, None)
    missing, problem = staff.find("Пётр Кузнецов")
    assert missing is None
    assert problem is not None
    assert problem.kind == "unknown_reference"
    assert "Пётр Кузнецов" in problem.message
    _, ambiguous = Staff([(ivan, "Иван Петров", "a@x"), (anna, "Иван Петров", "b@x")]).find(
        "Иван Петров"
    )
    assert ambiguous is not None
    assert ambiguous.kind == "ambiguous"


def test_a_workbook_without_a_header_on_any_sheet_is_refused() -> None:
    file = _xlsx({"Один": [["Цвет", "Размер"], ["красный", "XL"]], "Два": [["Итого", 5]]})
    with pytest.raises(TabularError, match="no column names the organization"):
        _read(file)
    with pytest.raises(TabularError, match="the file is empty"):
        _read(_xlsx({"Пусто": [], "Тоже": [[None]]}))


AMOCRM_CONTACTS = [
    "ID",
    "Полное имя",
    "Имя",
    "Фамилия",
    "Компания",
    "Ответственный",
    "Теги",
    "Должность",
    "Рабочий телефон",
    "Мобильный телефон",
    "Рабочий email",
    "Личный email",
]
"""An amoCRM contacts export's columns (ADR 58)."""


def test_an_amocrm_contacts_export_is_refused_as_persons_not_read_as_companies() -> None:
    """Its «Компания» names an organization, but its phones and e-mails are the person's: read
    as organizations it would give a company its employees' mobiles (ADR 58)."""
    row = ["1", "Иван Петров", "Иван", "Петров", "ООО «Альфа»", "", "", "Директор"]
    row += ["+7 495 123-45-67", "+7 916 123-45-67", "ivan@alfa.ru", ""]
    with pytest.raises(PersonsFile) as caught:
        _read(_xlsx({"Контакты": [AMOCRM_CONTACTS, row]}))
    message = str(caught.value)
    assert message.startswith("the file is a list of persons (contacts)")
    assert "«Полное имя», «Имя», «Фамилия»" in message
    assert "to import the file as persons send it to POST /v1/persons/import" in message
    assert "POST /v1/persons/import" in str(russian(message + "."))


def test_a_contacts_file_without_a_company_column_is_named_as_persons_too() -> None:
    content = "Имя;Фамилия;Мобильный телефон\r\nИван;Петров;+79161234567\r\n".encode()
    with pytest.raises(PersonsFile, match="«Имя», «Фамилия»"):
        _read(io.BytesIO(content), "contacts.csv")


def test_the_companies_sheet_beside_a_contacts_sheet_is_read() -> None:
    contacts = [AMOCRM_CONTACTS, ["1", "Иван Петров", "Иван", "Петров", "ООО «Альфа»"]]
    companies = [["ID", "Название", "ИНН", "Рабочий телефон"], ["7", "ООО «Альфа»", INN, ""]]
    opening, rows = _read(_xlsx({"Контакты": contacts, "Компании": companies}))
    assert opening.source["sheet"] == "Компании"
    assert [row.draft.legal_name for row in rows if row.draft] == ["ООО «Альфа»"]


def test_person_columns_mapped_to_null_read_each_row_as_its_company() -> None:
    row = ["1", "Иван Петров", "Иван", "Петров", "ООО «Альфа»"]
    plan = _plan("contacts.xlsx")
    plan = ReadPlan(**{**plan.__dict__, "overrides": dict.fromkeys(AMOCRM_CONTACTS[1:4])})
    chunks = parsed_chunks(_xlsx({"Контакты": [AMOCRM_CONTACTS, row]}), plan)
    [parsed] = [parsed for chunk in chunks for parsed in chunk]
    assert parsed.draft is not None
    assert parsed.draft.legal_name == "ООО «Альфа»"


@pytest.mark.parametrize("kind", ["labels", "archived"])
def test_an_organizations_attribute_named_like_a_person_column_is_the_organizations(
    kind: str,
) -> None:
    header = ["Наименование", "ИНН", "Контакт"]
    plan = _plan("export.xlsx")
    plan = ReadPlan(**{**plan.__dict__, kind: {"contact_person": "Контакт"}})
    chunks = parsed_chunks(_xlsx({"Организации": [header, ["ООО «Альфа»", INN, ""]]}), plan)
    [parsed] = [parsed for chunk in chunks for parsed in chunk]
    assert parsed.draft is not None
    assert parsed.draft.legal_name == "ООО «Альфа»"
