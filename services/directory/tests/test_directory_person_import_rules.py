"""The rows of a file of persons (ADR 63): amoCRM's and Bitrix24's contact headers, full names,
dates, consent, NUL bytes, in-file duplicates, matching existing persons and organizations, and
the sheet of persons found beside a companies sheet; the generator's truth is deterministic."""

from __future__ import annotations

import io
import uuid
from datetime import date

import pytest
from clientele_directory.imports.reader import ReadPlan
from clientele_directory.person_imports.reading import NO_PERSON_COLUMN, person_chunks
from clientele_directory.person_imports.rules import (
    KnownOrganization,
    KnownPerson,
    KnownPersons,
    Organizations,
    PersonKeys,
    find_person_header,
    map_person_headers,
    parse_date,
    parse_person_row,
    split_full_name,
)
from clientele_directory.person_imports.service import person_patch
from clientele_directory.persons.rules import Consent, Person
from clientele_directory.tabular import TabularError
from clientele_testkit.import_generator import AMOCRM_CONTACTS, BITRIX24_CONTACTS, generate_persons
from openpyxl import Workbook


def _row(header: list[str], **cells: str | None) -> tuple[dict[int, str], list[str | None]]:
    mapping, problems = map_person_headers(header)
    assert problems == []
    row: list[str | None] = [cells.get(str(i)) for i in range(len(header))]
    for name, value in cells.items():
        if not name.isdigit():
            row[header.index(name.replace("_", " "))] = value
    return mapping, row


def test_amocrm_and_bitrix24_contact_headers_are_recognised() -> None:
    amo, problems = map_person_headers(AMOCRM_CONTACTS)
    assert problems == []
    assert sorted(amo.values()) == sorted(
        [
            "full_name",
            "first_name",
            "last_name",
            "company",
            "position",
            "phones",
            "phones.mobile",
            "emails",
            "emails",
            "birthday",
        ]
    )
    bitrix, problems = map_person_headers(BITRIX24_CONTACTS)
    assert problems == []
    assert {"first_name", "middle_name", "last_name", "emails", "phones.mobile"} <= set(
        bitrix.values()
    )
    # a companies sheet names no person: it is passed over
    assert find_person_header([["Наименование", "ИНН", "Телефон"]]) is None
    title = [["Контакты на 01.12.2026"], [], ["Фамилия", "Имя", "Телефон", "Неизвестное"]]
    assert find_person_header(title) == (["Фамилия", "Имя", "Телефон", "Неизвестное"], 3)
    _, problems = map_person_headers(["ФИО", "Полное имя"])
    assert problems == ["columns 1 and 2 both name 'full_name'"]


@pytest.mark.parametrize(
    ("text", "parts"),
    [
        ("Иван", {"first_name": "Иван"}),
        ("Иван Петров", {"first_name": "Иван", "last_name": "Петров"}),
        ("Петров Иван", {"first_name": "Петров", "last_name": "Иван"}),
        ("Иван Сергеевич", {"first_name": "Иван", "middle_name": "Сергеевич"}),
        (
            "Петров Иван Сергеевич",
            {"last_name": "Петров", "first_name": "Иван", "middle_name": "Сергеевич"},
        ),
        (
            "Мария Ивановна Петрова",
            {"first_name": "Мария", "middle_name": "Ивановна", "last_name": "Петрова"},
        ),
        ("  ", {}),
    ],
)
def test_a_full_name_is_split(text: str, parts: dict[str, str]) -> None:
    assert split_full_name(text) == parts


def test_the_row_s_own_name_columns_tell_a_full_name_s_order() -> None:
    assert split_full_name("Петров Иван", {"first_name": "Иван"}) == {
        "last_name": "Петров",
        "first_name": "Иван",
    }


def test_dates_as_files_write_them() -> None:
    assert parse_date("08.03.1990") == date(1990, 3, 8)
    assert parse_date("1990-03-08") == date(1990, 3, 8)
    assert parse_date("1990-03-08T00:00:00") == date(1990, 3, 8)
    assert parse_date("31.02.1990") is None
    assert parse_date("вчера") is None


def test_a_row_becomes_a_person_with_no_consent_unless_the_file_says_so() -> None:
    header = ["Полное имя", "Имя", "Компания", "Мобильный телефон", "Рабочий email", "Инн"]
    mapping, _ = map_person_headers(header)
    row = ["Петров Ваня", "Ваня", "ООО «Альфа»", "8 916 123-45-67", "Ivan@Example.org", None]
    parsed = parse_person_row(2, mapping, row, ["north"])
    assert parsed.errors == []
    assert parsed.draft is not None
    # the first name column tells the full name's order
    assert (parsed.draft.first_name, parsed.draft.last_name) == ("Ваня", "Петров")
    assert parsed.draft.phones[0].number == "+79161234567"
    assert parsed.draft.phones[0].kind == "mobile"
    assert parsed.emails() == ["ivan@example.org"]
    assert parsed.draft.directions == ["north"]
    assert not any(parsed.draft.consent.model_dump().values())
    assert (parsed.company, parsed.company_inn) == ("ООО «Альфа»", None)

    mapping, _ = map_person_headers(["Фамилия", "Согласие на рассылку", "Согласие на SMS"])
    yes = parse_person_row(2, mapping, ["Ёлкина", "Да", "нет"], ["north"])
    assert yes.draft is not None
    assert yes.draft.consent.email is True
    assert yes.draft.consent.sms is False
    assert yes.consent_given == {"email", "sms"}
    unsure = parse_person_row(3, mapping, ["Ёлкина", "наверное", None], ["north"])
    assert [(p.field, p.kind) for p in unsure.errors] == [("consent.email", "consent")]


def test_bad_cells_are_row_errors() -> None:
    mapping, _ = map_person_headers(["Фамилия", "Имя", "Дата рождения", "Email", "Любимый цвет"])
    nul = parse_person_row(2, mapping, ["Пет\x00ров", "Иван", None, None, "синий"], ["n"])
    assert [(p.field, p.kind) for p in nul.errors] == [("last_name", "nul")]
    assert nul.draft is None
    broken = parse_person_row(3, mapping, ["Петров", None, "31.02.1990", None, None], ["n"])
    assert [(p.field, p.kind) for p in broken.errors] == [("birthday", "date")]
    future = parse_person_row(4, mapping, ["Петров", None, "01.01.2999", None, None], ["n"])
    assert [p.field for p in future.errors] == ["birthday"]
    nameless = parse_person_row(5, mapping, [None, None, None, "a@b.example", None], ["n"])
    assert [p.kind for p in nameless.errors] == ["name"]
    unicode = parse_person_row(6, mapping, ["Đặng", "Zoë 🙂", None, None, None], ["n"])
    assert unicode.errors == []


def test_a_bad_position_or_department_is_the_row_s_error() -> None:
    """Checked with the row, as the person's own fields are: an employment the chunk's writer
    would refuse never fails the whole import (a line break typed in an Excel cell, 201
    characters)."""
    mapping, _ = map_person_headers(["Фамилия", "Компания", "Должность", "Отдел"])
    typed = parse_person_row(2, mapping, ["Петров", "ООО «Ромашка»", "Юрист\nстарший", None], ["n"])
    assert [p.field for p in typed.errors] == ["position"]
    assert typed.draft is None
    long = parse_person_row(3, mapping, ["Петров", "ООО «Ромашка»", None, "о" * 201], ["n"])
    assert [p.field for p in long.errors] == ["department"]
    fine = parse_person_row(4, mapping, ["Петров", "ООО «Ромашка»", " Юрист ", "Право"], ["n"])
    assert fine.errors == []
    assert (fine.position, fine.department) == ("Юрист", "Право")


def test_in_file_duplicates_name_the_earlier_row() -> None:
    mapping, _ = map_person_headers(["Фамилия", "Рабочий телефон", "Email"])
    keys = PersonKeys()
    rows = [
        ["Петров", "+7 495 111-22-33", "a@x.example"],
        ["Сидоров", "+7 495 111-22-33", "b@x.example"],  # a colleague: the office phone
        ["Петров", None, "A@X.example"],
        ["Козлов", "8 (495) 111-22-33", None],
    ]
    found = [
        keys.check(parse_person_row(number, mapping, row, ["n"]))
        for number, row in enumerate(rows, start=2)
    ]
    assert found[0] is None
    assert found[1] is None
    assert found[2] is not None
    assert found[2].message == "the same email as row 2"
    assert found[3] is not None
    assert found[3].message == "the same phone as row 2"


def test_matching_by_email_then_phone_and_ambiguity() -> None:
    mapping, _ = map_person_headers(["Фамилия", "Телефон", "Email"])
    anna, boris, clara = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    known = KnownPersons(
        [
            KnownPerson(anna, frozenset({"anna@x.example"}), frozenset({"+74951112233"})),
            KnownPerson(boris, frozenset(), frozenset({"+74952223344"})),
            KnownPerson(clara, frozenset(), frozenset({"+74952223344"})),
        ]
    )

    def match(phone: str | None, email: str | None) -> tuple[object, object, object]:
        parsed = parse_person_row(2, mapping, ["Икс", phone, email], ["n"])
        target, by, problem = known.match(parsed)
        return target, by, problem.kind if problem else None

    assert match(None, "ANNA@x.example") == (anna, "email", None)
    assert match("+7 495 111-22-33", None) == (anna, "phone", None)
    # both have e-mails, and they differ: two people sharing a phone
    assert match("+7 495 111-22-33", "other@x.example") == (None, None, None)
    assert match("+7 495 222-33-44", None) == (None, None, "ambiguous")


def test_a_person_as_an_earlier_row_left_him_is_what_later_rows_match() -> None:
    mapping, _ = map_person_headers(["Фамилия", "Телефон", "Email"])
    boris, clara = uuid.uuid4(), uuid.uuid4()
    known = KnownPersons(
        [
            KnownPerson(boris, frozenset(), frozenset({"+74952223344"})),
            KnownPerson(clara, frozenset({"clara@x.example"}), frozenset()),
        ]
    )

    def match(phone: str | None, email: str | None) -> object:
        return known.match(parse_person_row(2, mapping, ["Икс", phone, email], ["n"]))[0]

    assert match("+7 495 222-33-44", "vera@x.example") == boris
    # an earlier row gave Boris an e-mail: a colleague on his phone is no longer him
    known.put(KnownPerson(boris, frozenset({"boris@x.example"}), frozenset({"+74952223344"})))
    assert match("+7 495 222-33-44", "vera@x.example") is None
    assert match(None, "boris@x.example") == boris
    # Clara's e-mail moved away from her: nobody has it now
    known.put(KnownPerson(clara, frozenset({"c@x.example"}), frozenset({"+74953334455"})))
    assert match(None, "clara@x.example") is None
    assert match("+7 495 333-44-55", None) == clara


def test_an_organization_is_linked_only_when_exactly_one_is_named() -> None:
    one, two, three = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    orgs = Organizations(
        [
            KnownOrganization(one, "7707083893", "альфа"),
            KnownOrganization(two, None, "бета"),
            KnownOrganization(three, None, "бета"),
        ],
        {"ООО «Альфа»": "альфа", "Бета": "бета", "Гамма": "гамма"},
    )
    assert orgs.resolve("ООО «Альфа»", None) == (one, None)
    assert orgs.resolve("Гамма", "7707083893") == (one, None)  # the INN first
    assert orgs.resolve(None, None) == (None, None)
    none, warning = orgs.resolve("Гамма", None)
    assert none is None
    assert warning is not None
    assert warning.kind == "unknown_organization"
    none, warning = orgs.resolve("Бета", None)
    assert none is None
    assert warning is not None
    assert warning.kind == "ambiguous_organization"


def _plan(max_rows: int = 100) -> ReadPlan:
    return ReadPlan(
        filename="contacts.xlsx",
        overrides={},
        labels={},
        directions=["north"],
        max_rows=max_rows,
        too_many=f"more than {max_rows} rows",
        chunk_rows=2,
    )


def _workbook(sheets: dict[str, list[list[str | None]]]) -> io.BytesIO:
    book = Workbook()
    assert book.active is not None
    book.remove(book.active)
    for title, rows in sheets.items():
        sheet = book.create_sheet(title)
        for row in rows:
            sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    out.seek(0)
    return out


def test_the_sheet_of_persons_beside_a_companies_sheet_is_read() -> None:
    file = _workbook(
        {
            "Компании": [["Наименование", "ИНН"], ["ООО «Альфа»", "7707083893"]],
            "Контакты": [
                ["Фамилия", "Имя", "Компания"],
                ["Петров", "Иван", "ООО «Альфа»"],
                [None, None, None],
                ["Сидорова", "Анна", None],
                ["Козлов", "Пётр", None],
            ],
        }
    )
    openings = []
    chunks = list(person_chunks(file, _plan(), openings.append))
    assert openings[0].source == {"header_row": 1, "header_rows": 1, "sheet": "Контакты"}
    assert [[p.number for p in chunk] for chunk in chunks] == [[2, 4], [5]]
    assert chunks[0][0].company == "ООО «Альфа»"

    companies = _workbook({"Компании": [["Наименование", "ИНН"], ["ООО «Альфа»", "7707083893"]]})
    with pytest.raises(TabularError, match="no column names the person"):
        list(person_chunks(companies, _plan()))
    assert NO_PERSON_COLUMN.startswith("no column names the person")


def test_rows_are_counted_before_any_is_read() -> None:
    file = _workbook({"Контакты": [["Фамилия"], *[[f"Петров{i}"] for i in range(5)]]})
    chunks = person_chunks(file, _plan(max_rows=4))
    with pytest.raises(TabularError, match=r"more than 4 rows \(the file has 5 rows\)"):
        next(chunks)


def test_the_generator_is_seeded_with_its_truth() -> None:
    one, again = generate_persons(200, ["ООО «Альфа»"]), generate_persons(200, ["ООО «Альфа»"])
    assert one.rows == again.rows
    assert one.truth == again.truth
    outcomes = {t.outcome for t in one.truth.values()}
    assert outcomes == {"ok", "error", "duplicate"}
    mapping, _ = map_person_headers(one.header)
    keys = PersonKeys()
    for number, row in enumerate(one.rows, start=2):
        parsed = parse_person_row(number, mapping, row, ["n"])
        truth = one.truth[number]
        duplicate = keys.check(parsed) if parsed.draft is not None else None
        if truth.outcome == "error":
            assert parsed.errors, number
            assert parsed.errors[0].field == truth.field, (number, parsed)
        elif truth.outcome == "duplicate":
            assert duplicate is not None, number
            assert duplicate.message == f"the same {truth.field} as row {truth.earlier}"
        else:
            assert parsed.errors == [], (number, parsed.errors)
            assert duplicate is None, number


def test_a_matched_person_gets_the_row_s_lists_added_and_consent_only_where_given() -> None:
    current = Person(
        id=uuid.uuid4(),
        version=3,
        last_name="Смирнова",
        emails=["anna@x.example"],
        phones=[{"number": "+74951112233"}],
        directions=["north"],
        consent=Consent(email=True, sms=True),
    )
    header = ["Фамилия", "Отчество", "Телефон", "Email", "Согласие на SMS"]
    mapping, _ = map_person_headers(header)
    row = ["Смирнова", "Ивановна", "+7 916 555-12-34", "ANNA@x.example; a2@x.example", "нет"]
    patch = person_patch(parse_person_row(2, mapping, row, ["south"]), current)
    given = patch.model_dump(exclude_unset=True)
    assert given["middle_name"] == "Ивановна"
    assert [p["number"] for p in given["phones"]] == ["+74951112233", "+79165551234"]
    assert given["emails"] == ["anna@x.example", "a2@x.example"]
    assert "directions" not in given  # the job's directions are for new persons only
    assert given["consent"] == {"email": True, "sms": False, "phone": False}

    mapping, _ = map_person_headers(["Фамилия"])
    silent = person_patch(parse_person_row(3, mapping, ["Смирнова"], ["south"]), current)
    assert "consent" not in silent.model_dump(exclude_unset=True)


def test_a_company_named_by_its_legal_form_alone_links_to_no_organization() -> None:
    # «ООО» has an empty name key, as an organization named only by punctuation has: no link
    nameless = uuid.uuid4()
    orgs = Organizations([KnownOrganization(nameless, None, "")], {"ООО": ""})
    none, warning = orgs.resolve("ООО", None)
    assert none is None
    assert warning is not None
    assert warning.kind == "unknown_organization"
