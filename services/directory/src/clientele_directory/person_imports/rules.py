"""The rows of a file of persons (ADR 63): the header vocabulary of amoCRM's and Bitrix24's contact
exports and of plain Excel lists, a row read as a new person (validated as ``POST /v1/persons``
validates), the in-file duplicates, and the matching of a row to the persons and organizations
the caller sees. No I/O."""

from __future__ import annotations

import dataclasses
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from clientele_directory.imports.headers import SCANNED_ROWS, map_columns, normalize_header
from clientele_directory.imports.rules import RowProblem, phone_value, row_problems, split_list
from clientele_directory.persons.rules import EmploymentFields, Person, PersonDraft

PERSON_FIELD_HEADERS: dict[str, tuple[str, ...]] = {
    "full_name": (
        "полное имя",  # amoCRM
        "фио",
        "ф и о",
        "контакт",
        "контактное лицо",
        "имя контакта",
        "full name",
        "full_name",
        "name",
        "contact",
        "contact name",
    ),
    "last_name": ("фамилия", "last name", "last_name", "surname", "family name"),
    "first_name": ("имя", "first name", "first_name", "given name"),
    "middle_name": ("отчество", "middle name", "middle_name", "patronymic"),
    "last_name_latin": ("last_name_latin", "фамилия латиницей"),
    "first_name_latin": ("first_name_latin", "имя латиницей"),
    "birthday": ("дата рождения", "день рождения", "birthday", "date of birth", "birth date"),
    "phones": (
        "рабочий телефон",  # amoCRM, Bitrix24
        "рабочий прямой телефон",  # amoCRM
        "телефон",
        "телефоны",
        "контактный телефон",
        "телефон для рассылок",  # Bitrix24
        "phone",
        "phones",
        "work phone",
    ),
    "phones.mobile": ("мобильный телефон", "мобильный", "сотовый", "mobile", "mobile phone"),
    "phones.other": (
        "домашний телефон",  # amoCRM, Bitrix24
        "другой телефон",
        "личный телефон",
        "other phone",
        "home phone",
    ),
    "phones.fax": ("факс", "номер факса", "fax"),
    "emails": (
        "рабочий email",  # amoCRM
        "рабочий e-mail",  # Bitrix24
        "личный email",  # amoCRM
        "личный e-mail",
        "частный e-mail",  # Bitrix24
        "другой email",
        "другой e-mail",
        "e-mail для рассылок",
        "email",
        "e-mail",
        "emails",
        "почта",
        "электронная почта",
        "адрес электронной почты",
        "mail",
    ),
    "company": (
        "компания",  # amoCRM, Bitrix24
        "название компании",
        "организация",
        "место работы",
        "контрагент",
        "company",
        "company name",
        "organization",
        "organisation",
    ),
    "company_inn": ("инн", "инн компании", "инн организации", "inn", "company inn"),
    "position": ("должность", "position", "job title"),
    "department": ("отдел", "подразделение", "department"),
    "directions": ("направление", "направления", "direction", "directions"),
    "consent.email": (
        "согласие на рассылку",
        "согласие на e-mail рассылку",
        "согласие на email",
        "consent.email",
        "email consent",
    ),
    "consent.sms": ("согласие на sms", "согласие на смс", "consent.sms", "sms consent"),
    "consent.phone": ("согласие на звонки", "consent.phone", "phone consent"),
}
"""Fields an import of persons fills, with the headers that name them (compared as
normalize_header makes them). Other columns (amoCRM's «Ответственный», «Теги», «Дата создания»,
Bitrix24's «Источник») are not read. ``company``/``company_inn`` name the organization the
person works at; ``position``/``department`` are his employment's there."""

FIELDS = frozenset(PERSON_FIELD_HEADERS)
NAME_FIELDS = frozenset({"full_name", "last_name", "first_name"})
SEVERAL_COLUMNS = frozenset({"phones", "phones.mobile", "phones.other", "phones.fax", "emails"})
"""Fields several columns may give (amoCRM has a work and a private e-mail)."""
_ALIASES = {
    normalize_header(name): field for field, names in PERSON_FIELD_HEADERS.items() for name in names
}

YES = frozenset({"да", "yes", "y", "true", "1", "+", "согласен", "согласна", "есть"})
NO = frozenset({"нет", "no", "n", "false", "0", "-", "не согласен", "не согласна"})


def map_person_headers(
    headers: Sequence[str | None], overrides: Mapping[str, str | None] | None = None
) -> tuple[dict[int, str], list[str]]:
    """``({column index: field}, problems)`` for a header row; ``overrides`` map a header as
    written to a field or to None (ignore it) and win over detection."""
    return map_columns(headers, overrides, _ALIASES, FIELDS, SEVERAL_COLUMNS)


def find_person_header(
    rows: Sequence[Sequence[str | None]], overrides: Mapping[str, str | None] | None = None
) -> tuple[list[str | None], int] | None:
    """``(names, row number)`` of the header among a sheet's first rows: the row naming the
    most fields, a person's name among them (the first such when several tie); None when no
    row names a person."""
    best: tuple[int, list[str | None], int] | None = None
    for at, row in enumerate(rows[:SCANNED_ROWS]):
        mapping, _ = map_person_headers(row, overrides)
        if not NAME_FIELDS & set(mapping.values()):
            continue
        if best is None or len(mapping) > best[0]:
            best = (len(mapping), list(row), at + 1)
    return None if best is None else (best[1], best[2])


_PATRONYMIC = re.compile(r"(вич|вна|ична|инична|оглы|кызы)$", re.IGNORECASE)


def split_full_name(text: str, known: Mapping[str, str] | None = None) -> dict[str, str]:
    """A full name's parts. Three words are «Фамилия Имя Отчество» (the Russian order), or «Имя
    Отчество Фамилия» when the middle word is a patronymic; two words are «Имя Фамилия» (as
    amoCRM and Bitrix24 show a contact), «Фамилия Имя» when the row's own first or last name
    column says so (``known``), or «Имя Отчество»; one word is a first name; more than three:
    the last name, the first name and the rest as the middle name."""
    words = text.split()
    known = known or {}
    if not words:
        return {}
    if len(words) == 1:
        return {"first_name": words[0]}
    if len(words) == 2:
        if known.get("first_name") == words[1] or known.get("last_name") == words[0]:
            return {"last_name": words[0], "first_name": words[1]}
        if _PATRONYMIC.search(words[1]):
            return {"first_name": words[0], "middle_name": words[1]}
        return {"first_name": words[0], "last_name": words[1]}
    if len(words) == 3 and _PATRONYMIC.search(words[1]) and not _PATRONYMIC.search(words[2]):
        return {"first_name": words[0], "middle_name": words[1], "last_name": words[2]}
    return {"last_name": words[0], "first_name": words[1], "middle_name": " ".join(words[2:])}


_DATE_FORMATS = ("%d.%m.%Y", "%d/%m/%Y", "%Y-%m-%d", "%d-%m-%Y", "%d.%m.%y")


def parse_date(text: str) -> date | None:
    """A date as files write it (DD.MM.YYYY, an .xlsx date read as YYYY-MM-DD, with a time of
    00:00 or not); None when it is none."""
    text = text.strip()
    try:
        return datetime.fromisoformat(text).date()
    except ValueError:
        pass
    for form in _DATE_FORMATS:
        try:
            return datetime.strptime(text, form).date()
        except ValueError:
            continue
    return None


@dataclass
class ParsedPerson:
    """One data row of a file of persons: the new person it describes (validated as a new
    person would be), the organization it names, and what is wrong with it."""

    number: int
    given: set[str]
    draft: PersonDraft | None
    errors: list[RowProblem]
    cells: list[str | None] = dataclasses.field(default_factory=list)
    """The row as read (for the report of the rows that fail)."""
    company: str | None = None
    company_inn: str | None = None
    position: str | None = None
    department: str | None = None
    consent_given: set[str] = dataclasses.field(default_factory=set)
    """The consent channels the row's columns speak of (no column: no consent, ADR 63)."""

    def emails(self) -> list[str]:
        """The row's e-mails as compared: case-folded."""
        return [e.lower() for e in self.draft.emails] if self.draft else []

    def phones(self) -> list[str]:
        return [phone.number for phone in self.draft.phones] if self.draft else []


def _phones(text: str, kind: str | None) -> list[str | dict[str, str]]:
    phones = [phone_value(part) for part in split_list(text)]
    if kind is None:
        return phones
    return [{"number": p, "kind": kind} if isinstance(p, str) else p for p in phones]


def parse_person_row(
    number: int,
    mapping: Mapping[int, str],
    row: Sequence[str | None],
    default_directions: Sequence[str],
) -> ParsedPerson:
    """A row checked by the rules of ``POST /v1/persons`` (names, phones, e-mails, birthday);
    separate name columns win over a full name; directions default to the import's; consent
    only from a consent column that says yes or no (none else: no consent)."""
    fields: dict[str, Any] = {}
    extra: dict[str, str] = {}
    errors: list[RowProblem] = []
    full: str | None = None
    for index, field in mapping.items():
        raw = row[index] if index < len(row) else None
        if raw is None or not raw.strip():
            continue
        if "\x00" in raw:
            errors.append(
                RowProblem(field=field, message="the cell holds a NUL character", kind="nul")
            )
            continue
        value = raw.strip()
        if field == "full_name":
            full = value
        elif field.startswith("phones"):
            kind = field.partition(".")[2] or None
            fields.setdefault("phones", []).extend(_phones(value, kind))
        elif field == "emails":
            fields.setdefault("emails", []).extend(split_list(value))
        elif field == "directions":
            fields["directions"] = split_list(value)
        elif field == "birthday":
            day = parse_date(value)
            if day is None:
                errors.append(
                    RowProblem(
                        field="birthday",
                        message=f"not a date: «{value[:40]}» (DD.MM.YYYY expected)",
                        kind="date",
                    )
                )
            else:
                fields["birthday"] = day
        elif field.startswith("consent."):
            word = normalize_header(value)
            if word not in YES | NO:
                errors.append(
                    RowProblem(
                        field=field,
                        message=f"not a yes or no: «{value[:40]}»",
                        kind="consent",
                    )
                )
            else:
                fields.setdefault("consent", {})[field.partition(".")[2]] = word in YES
        elif field in ("company", "company_inn", "position", "department"):
            extra[field] = value
        else:
            fields[field] = value
    if full is not None:
        for part, value in split_full_name(full, fields).items():
            fields.setdefault(part, value)
    given = set(fields)
    if "directions" not in fields:
        fields["directions"] = list(default_directions)
    draft: PersonDraft | None = None
    try:
        draft = PersonDraft.model_validate(fields)
    except PydanticValidationError as exc:
        errors += row_problems(exc.errors(include_url=False))
    job: dict[str, Any] = {n: extra[n] for n in ("position", "department") if n in extra}
    try:  # checked here, like the person's fields: the row is refused alone
        extra |= EmploymentFields.model_validate(job).model_dump(include=set(job))
    except PydanticValidationError as exc:
        errors += row_problems(exc.errors(include_url=False))
    return ParsedPerson(
        number,
        given,
        draft if not errors else None,
        errors,
        company=extra.get("company"),
        company_inn=extra.get("company_inn"),
        position=extra.get("position"),
        department=extra.get("department"),
        consent_given=set(fields.get("consent", {})),
    )


@dataclass
class PersonKeys:
    """The e-mails and phones of the file's earlier rows: a row repeating an e-mail is a
    ``duplicate_in_file`` of the first row that gave it; a repeated phone too, unless both rows
    give e-mails (colleagues share an office phone; their different e-mails tell them apart)."""

    emails: dict[str, int] = dataclasses.field(default_factory=dict)
    phones: dict[str, list[tuple[int, bool]]] = dataclasses.field(default_factory=dict)

    def check(self, parsed: ParsedPerson) -> RowProblem | None:
        """The problem when the row repeats an earlier one; its keys are kept either way."""
        problem = None
        mails = parsed.emails()
        for email in mails:
            if email in self.emails:
                problem = _duplicate("email", self.emails[email])
                break
        if problem is None:
            for phone in parsed.phones():
                earlier = next(
                    (row for row, mailed in self.phones.get(phone, []) if not (mailed and mails)),
                    None,
                )
                if earlier is not None:
                    problem = _duplicate("phone", earlier)
                    break
        for email in mails:
            self.emails.setdefault(email, parsed.number)
        for phone in parsed.phones():
            self.phones.setdefault(phone, []).append((parsed.number, bool(mails)))
        return problem


def _duplicate(kind: str, row: int) -> RowProblem:
    return RowProblem(field=kind, message=f"the same {kind} as row {row}", kind="duplicate_in_file")


@dataclass(frozen=True)
class KnownPerson:
    id: uuid.UUID
    emails: frozenset[str]
    phones: frozenset[str]

    @classmethod
    def of(cls, person: Person) -> KnownPerson:
        """A person's keys as rows are matched against them (e-mails case-folded)."""
        return cls(
            person.id,
            frozenset(e.lower() for e in person.emails),
            frozenset(p.number for p in person.phones),
        )


class KnownPersons:
    """Existing persons the caller sees that a chunk's rows may match: by e-mail (case-folded),
    then by phone (E.164) unless the row and the person both have e-mails (then they are two
    people sharing a phone); several persons for one criterion make the row ``ambiguous``."""

    def __init__(self, found: Iterable[KnownPerson]) -> None:
        self.persons: dict[uuid.UUID, KnownPerson] = {}
        self.by_email: dict[str, set[uuid.UUID]] = {}
        self.by_phone: dict[str, set[uuid.UUID]] = {}
        for person in found:
            self.put(person)

    def put(self, person: KnownPerson) -> None:
        """The person as an earlier row left him (his e-mails and phones now)."""
        if (old := self.persons.get(person.id)) is not None:
            for email in old.emails:
                self.by_email[email].discard(old.id)
            for phone in old.phones:
                self.by_phone[phone].discard(old.id)
        self.persons[person.id] = person
        for email in person.emails:
            self.by_email.setdefault(email, set()).add(person.id)
        for phone in person.phones:
            self.by_phone.setdefault(phone, set()).add(person.id)

    def match(self, parsed: ParsedPerson) -> tuple[uuid.UUID | None, str | None, RowProblem | None]:
        """``(person id, matched_by, problem)``."""
        mails = parsed.emails()
        tries = [
            ("email", {i for e in mails for i in self.by_email.get(e, ())}),
            (
                "phone",
                {
                    i
                    for p in parsed.phones()
                    for i in self.by_phone.get(p, ())
                    if not (mails and self.persons[i].emails)
                },
            ),
        ]
        for kind, ids in tries:
            if len(ids) > 1:
                return (
                    None,
                    None,
                    RowProblem(
                        field=kind,
                        kind="ambiguous",
                        message=f"the {kind} matches {len(ids)} persons; merge them first",
                    ),
                )
            if ids:
                return next(iter(ids)), kind, None
        return None, None, None


@dataclass(frozen=True)
class KnownOrganization:
    id: uuid.UUID
    inn: str | None
    name_key: str | None


class Organizations:
    """The live organizations the caller sees that a chunk's rows name, by INN and by name
    (its key: lower case, without the legal form, as the similar-name look-up compares)."""

    def __init__(self, found: Iterable[KnownOrganization], keys: Mapping[str, str]) -> None:
        self.keys = keys
        """A name as the file wrote it -> its key."""
        self.by_inn: dict[str, set[uuid.UUID]] = {}
        self.by_key: dict[str, set[uuid.UUID]] = {}
        for org in found:
            if org.inn:
                self.by_inn.setdefault(org.inn, set()).add(org.id)
            if org.name_key:
                self.by_key.setdefault(org.name_key, set()).add(org.id)

    def resolve(
        self, name: str | None, inn: str | None
    ) -> tuple[uuid.UUID | None, RowProblem | None]:
        """The organization a row names (its INN first, else its name) when exactly one is
        found; else None and the warning why the person is imported without the link."""
        if inn:
            ids, what = self.by_inn.get(inn, set()), f"INN {inn}"
            field = "company_inn"
        elif name:
            ids, what = self.by_key.get(self.keys.get(name, ""), set()), f"named «{name}»"
            field = "company"
        else:
            return None, None
        if len(ids) == 1:
            return next(iter(ids)), None
        if not ids:
            return None, RowProblem(
                field=field,
                kind="unknown_organization",
                message=f"no organization {what} that you may see: imported without the link",
            )
        return None, RowProblem(
            field=field,
            kind="ambiguous_organization",
            message=f"{len(ids)} organizations {what}: imported without the link",
        )
