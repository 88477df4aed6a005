"""A seeded generator of organization files as a company moving its 1C/Excel base in would bring
them (issue 17), with the ground truth of every row: valid and invalid INN/KPP/OGRN (OGRNIPs whose
remainder is 10-12 among them), INNs that lost a leading zero, in-file duplicates (by INN, and by
an e-mail written in another case), messy phones with extensions, upper-case e-mails."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from stdnum.ru import inn as ru_inn

HEADER = [
    "Наименование",
    "ИНН",
    "КПП",
    "ОГРН",
    "Контактный телефон",
    "Адрес электронной почты",
    "Юридический адрес",
]
"""1C-style headers (the phone and e-mail ones as 1C writes them)."""

_BRANDS = ("Ромашка", "Вектор", "Гранит", "Сибирь", "Альфа", "Орбита", "Восход", "Радуга")
_FORMS = ("ООО", "АО", "ПАО", "ЗАО")


@dataclass(frozen=True)
class Truth:
    """What the import must make of a row: ``ok``, an ``error`` in ``field``, or a
    ``duplicate`` of the ``earlier`` row."""

    outcome: str
    field: str | None = None
    earlier: int | None = None


@dataclass
class GeneratedFile:
    header: list[str]
    rows: list[list[str | None]] = field(default_factory=list)
    truth: dict[int, Truth] = field(default_factory=dict)
    """By row number in the file (the header is row 1)."""


def company_inn(seq: int) -> str:
    body = f"{77 + seq % 3:02d}{seq:07d}"
    return body + str(ru_inn.calc_company_check_digit(body))


def trader_inn(seq: int) -> str:
    body = f"{50 + seq % 3:02d}{seq:08d}"
    return body + "".join(ru_inn.calc_personal_check_digits(body))


def ogrn(seq: int) -> str:
    body = f"10277{seq:07d}"
    return body + str(int(body) % 11 % 10)


def ogrnip(seq: int, remainder: int) -> str:
    """A valid OGRNIP whose first 14 digits leave ``remainder`` modulo 13."""
    body = int(f"3045001{seq:07d}")
    body += (remainder - body % 13) % 13
    return f"{body}{body % 13 % 10}"


def generate(rows: int, seed: int = 17) -> GeneratedFile:
    """``rows`` data rows with their truth, the same for the same seed."""
    rng = random.Random(seed)
    out = GeneratedFile(header=list(HEADER))
    earlier_inns: list[tuple[int, str]] = []
    earlier_mails: list[tuple[int, str]] = []
    for index in range(rows):
        number = index + 2
        seq = seed * 100_000 + index
        brand = f"{rng.choice(_BRANDS)}-{seq}"
        phone = rng.choice(
            (
                f"8 (495) {seq % 900 + 100}-{seq % 90 + 10}-{seq % 80 + 10}",
                f"+7 912 {seq % 900 + 100} {seq % 90 + 10} {seq % 80 + 10} доб. {seq % 999 + 1}",
                f"+7 (343) {seq % 900 + 100}-{seq % 90 + 10}-{seq % 80 + 10} вн. {seq % 99 + 1}",
            )
        )
        mail = f"office{seq}@{brand.split('-')[0].lower()}.example"
        if rng.random() < 0.3:
            mail = mail.upper()
        kind = rng.random()
        truth = Truth("ok")
        if kind < 0.15:  # a sole trader, a fifth with a remainder of 10-12
            inn = trader_inn(seq)
            remainder = rng.choice((10, 11, 12)) if rng.random() < 0.25 else seq % 10
            row: list[str | None] = [
                f"ИП {brand}",
                inn,
                None,
                ogrnip(seq, remainder),
                phone,
                mail,
                None,
            ]
        else:
            inn = company_inn(seq)
            row = [
                f"{rng.choice(_FORMS)} «{brand}»",
                inn,
                f"{inn[:4]}01001",
                ogrn(seq),
                phone,
                mail,
                f"г. Москва, ул. Ленина, д. {seq % 200 + 1}",
            ]
        if kind > 0.97:  # a wrong checksum
            row[1] = inn[:-1] + str((int(inn[-1]) + 1) % 10)
            row[3] = None
            truth = Truth("error", "inn")
        elif kind > 0.95:  # a leading zero lost by Excel
            row[1], row[2], row[3] = "7" + inn[2:], None, None
            truth = Truth("error", "inn")
        elif kind > 0.93:
            row[5] = "не почта"
            truth = Truth("error", "emails")
        elif kind > 0.90 and earlier_inns:  # the same INN as an earlier row
            first, known = rng.choice(earlier_inns)
            row[1], row[2], row[3] = known, None, None
            truth = Truth("duplicate", "inn", first)
        elif kind > 0.87 and earlier_mails:  # the same e-mail in another case, no INN
            first, known = rng.choice(earlier_mails)
            row[1], row[2], row[3] = None, None, None
            row[5] = known.swapcase()
            truth = Truth("duplicate", "email", first)
        if truth.outcome == "ok":
            if row[1]:
                earlier_inns.append((number, str(row[1])))
            if row[1] is None or rng.random() < 0.5:
                earlier_mails.append((number, str(row[5])))
        out.rows.append(row)
        out.truth[number] = truth
    return out


# --- persons (ADR 63) -------------------------------------------------------------------------

AMOCRM_CONTACTS = [
    "ID",
    "Полное имя",
    "Имя",
    "Фамилия",
    "Компания",
    "Должность",
    "Рабочий телефон",
    "Мобильный телефон",
    "Рабочий email",
    "Личный email",
    "Ответственный",
    "Теги",
    "Дата рождения",
]
"""An amoCRM contacts export's columns (its «Ответственный» and «Теги» are not read)."""

BITRIX24_CONTACTS = [
    "ID",
    "Имя",
    "Отчество",
    "Фамилия",
    "Компания",
    "Должность",
    "Рабочий телефон",
    "Мобильный телефон",
    "Рабочий e-mail",
    "Частный e-mail",
    "Ответственный",
    "Дата рождения",
]
"""A Bitrix24 contacts export's columns."""

_FIRST = ("Иван", "Мария", "Пётр", "Ольга", "Сергей", "Анна", "Dmitrii", "Zoë", "Łukasz")
_LAST = ("Иванов", "Смирнова", "Кузнецов", "Попова", "Соколов", "Ёлкина", "O'Neil", "Müller")
_PATRONYMIC = ("Иванович", "Петровна", "Сергеевич", "Алексеевна")


@dataclass(frozen=True)
class PersonTruth:
    """What the import must make of a row: ``ok``, an ``error`` in ``field``, or a
    ``duplicate`` of the ``earlier`` row; ``company`` the organization (by name) the person is
    linked to, ``warning`` the warning's kind when the company it names is none the caller
    sees."""

    outcome: str
    field: str | None = None
    earlier: int | None = None
    company: str | None = None
    warning: str | None = None


@dataclass
class GeneratedPersons:
    header: list[str]
    rows: list[list[str | None]] = field(default_factory=list)
    truth: dict[int, PersonTruth] = field(default_factory=dict)
    """By row number in the file (the header is row 1)."""


def generate_persons(
    rows: int, companies: list[str], *, seed: int = 63, bitrix: bool = False
) -> GeneratedPersons:
    """``rows`` contacts as amoCRM (or Bitrix24) exports them, with their truth, the same for
    the same seed: most work at one of ``companies`` (the organizations the importer sees),
    some at a company nobody has, some at none; broken birthdays and e-mails, rows without a
    name, and in-file duplicates (an earlier row's e-mail in another case, or its mobile
    written another way by a row without an e-mail)."""
    rng = random.Random(seed)
    out = GeneratedPersons(header=list(BITRIX24_CONTACTS if bitrix else AMOCRM_CONTACTS))
    earlier_mails: list[tuple[int, str]] = []
    earlier_mobiles: list[tuple[int, str]] = []
    for index in range(rows):
        number = index + 2
        seq = seed * 10_000 + index
        first, last = rng.choice(_FIRST), f"{rng.choice(_LAST)}{index}"
        middle = rng.choice(_PATRONYMIC)
        mobile_digits = f"9{seq % 10**9:09d}"
        mobile = rng.choice(
            (
                f"+7 {mobile_digits[:3]} {mobile_digits[3:6]}-{mobile_digits[6:8]}-"
                f"{mobile_digits[8:]}",
                f"8{mobile_digits}",
                f"8 ({mobile_digits[:3]}) {mobile_digits[3:]}",
            )
        )
        mail = f"p{seq}@contacts{seed}.example"
        if rng.random() < 0.3:
            mail = mail.upper()
        pick = rng.random()
        company: str | None
        truth_company: str | None = None
        warning: str | None = None
        if pick < 0.7 and companies:
            company = truth_company = rng.choice(companies)
        elif pick < 0.85:
            company, warning = f"ООО «Неизвестная-{seq}»", "unknown_organization"
        else:
            company = None
        birthday = f"{seq % 28 + 1:02d}.{seq % 12 + 1:02d}.19{seq % 50 + 50}"
        row: list[str | None]
        name_at: tuple[int, ...]
        if bitrix:
            row = [
                str(1000 + index),
                first,
                middle,
                last,
                company,
                "Менеджер",
                None,
                mobile,
                mail,
                None,
                "Иван Менеджеров",
                birthday,
            ]
            mail_at, mobile_at, birthday_at, name_at = 8, 7, 11, (1, 3)
        else:
            row = [
                str(1000 + index),
                f"{first} {last}",
                first,
                last,
                company,
                "Менеджер",
                None,
                mobile,
                mail,
                None,
                "Иван Менеджеров",
                "vip",
                birthday,
            ]
            mail_at, mobile_at, birthday_at, name_at = 8, 7, 12, (1, 2, 3)
        kind = rng.random()
        truth = PersonTruth("ok", company=truth_company, warning=warning)
        if kind > 0.97:
            row[birthday_at] = "31.02.1990"
            truth = PersonTruth("error", "birthday")
        elif kind > 0.95:
            row[mail_at] = "не почта"
            truth = PersonTruth("error", "emails")
        elif kind > 0.93:
            for at in name_at:
                row[at] = None
            truth = PersonTruth("error", None)
        elif kind > 0.90 and earlier_mails:
            first_row, known = rng.choice(earlier_mails)
            row[mail_at] = known.swapcase()
            truth = PersonTruth("duplicate", "email", first_row)
        elif kind > 0.87 and earlier_mobiles:
            first_row, known = rng.choice(earlier_mobiles)
            row[mail_at], row[mobile_at] = None, known
            truth = PersonTruth("duplicate", "phone", first_row)
        if truth.outcome == "ok":
            earlier_mails.append((number, mail))
            earlier_mobiles.append((number, f"+7{mobile_digits}"))
        out.rows.append(row)
        out.truth[number] = truth
    return out
