"""Import rules (no I/O): which column is which field (headers in Russian or English,
overridable), and turning a row into an organization draft with its problems."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

ORGANIZATION_COLUMNS: dict[str, tuple[str, ...]] = {
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
        "название",
        "организация",
        "компания",
        "юридическое наименование",
        "юр наименование",
    ),
    "short_name": (
        "short_name",
        "short name",
        "brand",
        "краткое наименование",
        "сокращенное наименование",
        "короткое название",
        "бренд",
    ),
    "inn": ("inn", "tax id", "tin", "инн"),
    "kpp": ("kpp", "кпп"),
    "ogrn": ("ogrn", "огрн", "огрнип", "ogrnip"),
    "country": ("country", "страна"),
    "foreign_tax_id": ("foreign_tax_id", "foreign tax id", "vat", "vat id", "иностранный номер"),
    "legal_address": ("legal_address", "legal address", "юридический адрес", "юр адрес"),
    "actual_address": (
        "actual_address",
        "actual address",
        "address",
        "фактический адрес",
        "адрес",
    ),
    "postal_address": ("postal_address", "postal address", "почтовый адрес"),
    "phones": ("phones", "phone", "telephone", "tel", "телефон", "телефоны", "тел"),
    "emails": ("emails", "email", "e-mail", "mail", "почта", "электронная почта", "эл почта"),
    "sites": ("sites", "site", "website", "web", "url", "сайт", "сайты", "веб-сайт"),
    "industry": ("industry", "отрасль", "вид деятельности", "сфера"),
    "categories": ("categories", "category", "категория", "категории"),
    "tags": ("tags", "tag", "теги", "тег", "метки"),
    "status": ("status", "статус"),
    "directions": ("directions", "direction", "направление", "направления"),
    "responsible_employee_id": ("responsible_employee_id", "responsible", "ответственный"),
}
"""Fields an organization import fills, with the headers that name them."""

LIST_FIELDS = frozenset({"phones", "emails", "sites", "categories", "tags", "directions"})
ADDRESS_FIELDS = frozenset({"legal_address", "actual_address", "postal_address"})

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


def normalize_header(header: str) -> str:
    """A header as compared: lower case, ё as е, punctuation and extra spaces dropped."""
    text = header.replace("ё", "е").replace("Ё", "Е").casefold()
    text = re.sub(r"[\s_.:*()\-]+", " ", text)
    return text.strip()


def map_headers(
    headers: Sequence[str | None],
    attributes: Mapping[str, str],
    overrides: Mapping[str, str | None] | None = None,
) -> tuple[dict[int, str], list[str]]:
    """``({column index: field}, problems)`` for a header row.

    Fields are the keys of ORGANIZATION_COLUMNS or ``attributes.<key>`` (a column named by an
    attribute's key or label, given as ``{key: label}``). ``overrides`` maps a header as written
    to a field, or to None to ignore that column; they win over detection. Columns that name
    nothing are ignored; two columns naming one field is a problem.
    """
    aliases: dict[str, str] = {}
    for field, names in ORGANIZATION_COLUMNS.items():
        for name in names:
            aliases[normalize_header(name)] = field
    for key, label in attributes.items():
        aliases.setdefault(normalize_header(key), f"attributes.{key}")
        aliases.setdefault(normalize_header(label), f"attributes.{key}")
    known = set(ORGANIZATION_COLUMNS) | {f"attributes.{key}" for key in attributes}
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
        if target in seen:
            problems.append(f"columns {seen[target] + 1} and {index + 1} both name {target!r}")
            continue
        seen[target] = index
        mapping[index] = target
    return mapping, problems


def split_list(text: str) -> list[str]:
    """Several values in one cell: separated by ``;``, ``,`` or new lines."""
    return [part.strip() for part in re.split(r"[;\n]|,(?=\s*\S)", text) if part.strip()]


def row_document(
    mapping: Mapping[int, str], row: Sequence[str | None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(organization fields, attribute values)`` of one row as raw values for validation:
    empty cells are left out, lists split, addresses wrapped, statuses read in either language.
    """
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for index, field in mapping.items():
        value = row[index] if index < len(row) else None
        if value is None:
            continue
        if field.startswith("attributes."):
            attributes[field.removeprefix("attributes.")] = value
        elif field in LIST_FIELDS:
            fields[field] = split_list(value) if field != "sites" else value.split()
        elif field in ADDRESS_FIELDS:
            fields[field] = {"text": value}
        elif field == "status":
            fields[field] = STATUS_WORDS.get(normalize_header(value), value)
        elif field == "inn":
            fields[field] = re.sub(r"\s", "", value)
        else:
            fields[field] = value
    return fields, attributes
