"""Which column is which field, for the files companies bring (ADR 48): the header vocabulary
of 1C, Bitrix24, amoCRM and Excel exports as data, and finding the header in the first rows of
a sheet (a title row above it, or two rows of it as 1C writes groups: «Контактная информация»
over «Телефон» and «Адрес электронной почты»). No I/O."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence, Set
from dataclasses import dataclass

FIELD_HEADERS: dict[str, tuple[str, ...]] = {
    "id": ("id", "идентификатор", "organization_id", "uuid"),
    "legal_name": (
        "legal_name",
        "legal name",
        "name",
        "company",
        "company name",
        "organization",
        "organisation",
        "наименование",
        "полное наименование",
        "наименование полное",
        "название",
        "название компании",  # Bitrix24
        "организация",
        "компания",
        "контрагент",
        "юридическое наименование",
        "юр наименование",
        "наименование контрагента",
    ),
    "short_name": (
        "short_name",
        "short name",
        "brand",
        "краткое наименование",
        "сокращенное наименование",
        "наименование краткое",
        "короткое название",
        "бренд",
    ),
    "inn": ("inn", "tax id", "tin", "инн", "инн контрагента"),
    "kpp": ("kpp", "кпп", "кпп контрагента"),
    "ogrn": ("ogrn", "огрн", "огрнип", "ogrnip", "основной государственный регистрационный номер"),
    "country": ("country", "страна", "страна регистрации"),
    "foreign_tax_id": ("foreign_tax_id", "foreign tax id", "vat", "vat id", "иностранный номер"),
    "legal_address": (
        "legal_address",
        "legal address",
        "юридический адрес",
        "юр адрес",
        "адрес юридический",
    ),
    "actual_address": (
        "actual_address",
        "actual address",
        "address",
        "фактический адрес",
        "адрес фактический",
        "адрес",  # Bitrix24, amoCRM
    ),
    "postal_address": ("postal_address", "postal address", "почтовый адрес", "адрес почтовый"),
    "phones": (
        "phones",
        "phone",
        "telephone",
        "tel",
        "work phone",
        "телефон",
        "телефоны",
        "тел",
        "контактный телефон",  # 1C
        "телефон организации",
        "рабочий телефон",  # Bitrix24, amoCRM
        "рабочий прямой телефон",  # amoCRM
        "телефон для рассылок",  # Bitrix24
    ),
    "phones.mobile": ("mobile", "mobile phone", "мобильный телефон", "мобильный", "сотовый"),
    "phones.fax": ("fax", "факс", "номер факса"),
    "phones.other": ("other phone", "другой телефон", "домашний телефон"),
    "emails": (
        "emails",
        "email",
        "e-mail",
        "mail",
        "почта",
        "электронная почта",
        "эл почта",
        "адрес электронной почты",  # 1C
        "рабочий e-mail",  # Bitrix24
        "рабочий email",  # amoCRM
        "частный e-mail",
        "личный email",
        "e-mail для рассылок",
        "другой e-mail",
        "другой email",
    ),
    "sites": (
        "sites",
        "site",
        "website",
        "web",  # amoCRM
        "url",
        "сайт",
        "сайты",
        "веб-сайт",
        "корпоративный сайт",  # Bitrix24
    ),
    "industry": ("industry", "отрасль", "вид деятельности", "сфера", "сфера деятельности"),
    "categories": ("categories", "category", "категория", "категории"),
    "tags": ("tags", "tag", "теги", "тег", "метки"),
    "status": ("status", "статус"),
    "directions": ("directions", "direction", "направление", "направления"),
    "responsible_employee_id": (
        "responsible_employee_id",
        "responsible",
        "ответственный",  # Bitrix24, amoCRM: a name
        "основной менеджер",  # 1C
        "основной менеджер покупателя",
        "менеджер",
    ),
}
"""Fields an organization import fills, with the headers that name them (compared as
normalize_header makes them). ``phones.<kind>`` columns give phones of that kind."""

PERSON_HEADERS = frozenset(
    {
        "имя",
        "фамилия",
        "отчество",
        "полное имя",  # amoCRM
        "фио",
        "ф и о",
        "контакт",
        "контактное лицо",
        "first name",
        "last name",
        "middle name",
        "full name",
        "contact name",
    }
)
"""Columns that name a person: a file with one is a list of contacts (amoCRM's and Bitrix24's
contact exports have «Имя», «Фамилия», «Должность» and «Компания»), not of organizations
(ADR 58); compared as normalize_header makes them."""

FIELDS = frozenset(FIELD_HEADERS)
SEVERAL_COLUMNS = frozenset(
    {"phones", "phones.mobile", "phones.fax", "phones.other", "emails", "sites", "tags"}
)
"""Fields that several columns may give (Bitrix24 has a work and a private e-mail): their
values are put together."""

STATUS_WORDS: dict[str, str] = {
    "prospect": "prospect",
    "потенциальный": "prospect",
    "потенциальный клиент": "prospect",
    "лид": "prospect",
    "client": "client",
    "клиент": "client",
    "customer": "client",
    "partner": "partner",
    "партнер": "partner",
    "former": "former",
    "бывший": "former",
    "бывший клиент": "former",
}
"""Statuses as files write them (compared as normalize_header makes them)."""

STATUS_RU: dict[str, str] = {
    "prospect": "Потенциальный клиент",
    "client": "Клиент",
    "partner": "Партнер",
    "former": "Бывший клиент",
}
"""Statuses as a Russian export writes them (read back through STATUS_WORDS)."""

SCANNED_ROWS = 20
"""The header is looked for in a sheet's first rows."""


def normalize_header(header: str) -> str:
    """A header as compared: lower case, ё as е, punctuation and extra spaces dropped."""
    text = header.replace("ё", "е").replace("Ё", "Е").casefold()
    text = re.sub(r"[\s_.:*()\-/]+", " ", text)
    return text.strip()


_ALIASES = {
    normalize_header(name): field for field, names in FIELD_HEADERS.items() for name in names
}


def map_headers(
    headers: Sequence[str | None],
    attributes: Mapping[str, str],
    overrides: Mapping[str, str | None] | None = None,
) -> tuple[dict[int, str], list[str]]:
    """``({column index: field}, problems)`` for a header row.

    Fields are the keys of FIELD_HEADERS or ``attributes.<key>`` (a column named by an
    attribute's key or label, given as ``{key: label}``). ``overrides`` maps a header as written
    to a field, or to None to ignore that column; they win over detection. Columns that name
    nothing are ignored; two columns naming one field is a problem, unless it is one of
    SEVERAL_COLUMNS.
    """
    aliases = dict(_ALIASES)
    for key, label in attributes.items():
        aliases.setdefault(normalize_header(key), f"attributes.{key}")
        aliases.setdefault(normalize_header(label), f"attributes.{key}")
    known = FIELDS | {f"attributes.{key}" for key in attributes}
    return map_columns(headers, overrides, aliases, known, SEVERAL_COLUMNS)


def map_columns(
    headers: Sequence[str | None],
    overrides: Mapping[str, str | None] | None,
    aliases: Mapping[str, str],
    known: Set[str],
    several: Set[str],
) -> tuple[dict[int, str], list[str]]:
    """``({column index: field}, problems)`` of a header row by ``aliases`` (normalized header
    -> field), the caller's ``overrides`` winning; fields outside ``known`` are problems when
    asked for and ignored when detected; two columns of one field are a problem unless it is
    one of ``several`` (for every kind of import)."""
    wanted = {normalize_header(h): f for h, f in (overrides or {}).items()}
    problems = [
        f"the mapping names an unknown field {field!r}"
        for field in wanted.values()
        if field is not None and field not in known
    ]
    mapping: dict[int, str] = {}
    seen: dict[str, int] = {}
    for index, header in enumerate(headers):
        if header is None:
            continue
        normalized = normalize_header(header)
        target = wanted[normalized] if normalized in wanted else aliases.get(normalized)
        if target is None or target not in known:
            continue
        if target in seen and target not in several:
            problems.append(f"columns {seen[target] + 1} and {index + 1} both name {target!r}")
            continue
        seen.setdefault(target, index)
        mapping[index] = target
    return mapping, problems


def _names_organization(mapping: Mapping[int, str]) -> bool:
    return bool({"legal_name", "inn"} & set(mapping.values()))


@dataclass(frozen=True)
class Header:
    """A sheet's header: its names (a two-row header's put together), the row it starts on and
    how many rows it takes (the file's row numbers, from 1)."""

    names: list[str | None]
    row: int
    rows: int = 1


def _joined(upper: Sequence[str | None], lower: Sequence[str | None]) -> list[str | None]:
    """A two-row header's names: the lower row's, else the upper's; where both read as no
    field, the group above (carried over the columns a merged cell spans) and the name under
    it, in whichever order names a field («Адрес» over «Юридический»)."""
    names: list[str | None] = []
    group: str | None = None
    for index in range(max(len(upper), len(lower))):
        top = upper[index] if index < len(upper) else None
        bottom = lower[index] if index < len(lower) else None
        group = top if top is not None else group
        if bottom is None:
            names.append(top)
            continue
        if normalize_header(bottom) in _ALIASES or group is None:
            names.append(bottom)
            continue
        both = (f"{group} {bottom}", f"{bottom} {group}")
        names.append(next((n for n in both if normalize_header(n) in _ALIASES), bottom))
    return names


def find_header(
    rows: Sequence[Sequence[str | None]],
    attributes: Mapping[str, str],
    overrides: Mapping[str, str | None] | None = None,
) -> Header | None:
    """The header among a sheet's first rows: the row (or two rows) naming the most fields,
    the organization's name or INN among them; the first such when several tie. Two rows are a
    header only when together they name more fields than either alone. None when no row names
    the organization."""
    scanned = [list(row) for row in rows[:SCANNED_ROWS]]

    def score(names: list[str | None]) -> int:
        mapping, _ = map_headers(names, attributes, overrides)
        return len(mapping) if _names_organization(mapping) else 0

    singles = [score(row) for row in scanned]
    best: tuple[int, Header] | None = None
    for at, row in enumerate(scanned):
        tries = [(singles[at], Header(row, at + 1))]
        if at + 1 < len(scanned):
            joined = _joined(row, scanned[at + 1])
            paired = score(joined)
            if paired > max(singles[at], singles[at + 1]):
                tries.append((paired, Header(joined, at + 1, 2)))
        for points, header in tries:
            if points and (best is None or points > best[0]):
                best = (points, header)
    return None if best is None else best[1]


def person_columns(
    row: Sequence[str | None],
    overrides: Mapping[str, str | None] | None = None,
    attributes: Mapping[str, str] | None = None,
) -> list[str]:
    """The headers in a row that name a person (PERSON_HEADERS), as written; a column the
    mapping names (to a field, or to None to ignore it) is the caller's choice and left out,
    and so is an organizations' attribute named by its key or label (an attribute «Контакт»
    is the organization's, as its export writes it)."""
    mapped = {normalize_header(header) for header in overrides or {}}
    for key, label in (attributes or {}).items():
        mapped |= {normalize_header(key), normalize_header(label)}
    return [
        cell
        for cell in row
        if cell is not None
        and (name := normalize_header(cell)) in PERSON_HEADERS
        and name not in mapped
    ]
