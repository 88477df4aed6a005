"""What an export holds: its columns and headers, formats and cell values (no I/O)."""

from __future__ import annotations

import enum
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from clientele_directory.attributes.rules import AttributeDefinition
from clientele_directory.imports.headers import STATUS_RU
from clientele_directory.imports.rules import LABEL_FIELDS, phone_cell, quote_labels
from clientele_directory.search.rules import OrganizationFilter


class ExportFormat(enum.StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


class HeaderLanguage(enum.StrEnum):
    EN = "en"
    RU = "ru"


class CsvEncoding(enum.StrEnum):
    """A CSV export's encoding: UTF-8 with a BOM, or Windows-1251 for 1C and old Excel."""

    UTF8 = "utf-8"
    CP1251 = "cp1251"


COLUMNS: list[tuple[str, str]] = [
    ("id", "id"),
    ("legal_name", "Наименование"),
    ("short_name", "Краткое наименование"),
    ("inn", "ИНН"),
    ("kpp", "КПП"),
    ("ogrn", "ОГРН"),
    ("country", "Страна"),
    ("status", "Статус"),
    ("industry", "Отрасль"),
    ("phones", "Телефоны"),
    ("emails", "E-mail"),
    ("sites", "Сайт"),
    ("categories", "Категории"),
    ("tags", "Теги"),
    ("directions", "Направления"),
    ("legal_address", "Юридический адрес"),
    ("actual_address", "Фактический адрес"),
    ("postal_address", "Почтовый адрес"),
    ("responsible_employee_id", "Ответственный"),
    ("blocked", "blocked"),
    ("created_at", "created_at"),
    ("updated_at", "updated_at"),
]
"""Exported columns: the field (the English header) and the Russian header."""

TEXT_COLUMNS = frozenset({"inn", "kpp", "ogrn", "phones"})
"""Columns an .xlsx writes as text cells (the text format ``@``): Excel shows a 12-digit INN as
``5,00101E+11`` and drops a leading zero from a number."""

CP1251_TEXT_FIELDS = (
    "legal_name",
    "short_name",
    "foreign_tax_id",
    "legal_address",
    "actual_address",
    "postal_address",
    "phones",
    "emails",
    "sites",
    "industry",
    "categories",
    "tags",
    "directions",
    "attributes",
)
"""The exported fields that may hold characters Windows-1251 lacks (the others are ASCII)."""

CP1251_CHARACTERS = bytes(range(0x80, 0x100)).decode("cp1251", errors="ignore")
"""The characters Windows-1251 has beyond ASCII."""


def cp1251_missing_pattern() -> str:
    """A PostgreSQL regular expression matching one character Windows-1251 lacks."""
    return "[^\\u0001-\\u007f" + CP1251_CHARACTERS + "]"


def cp1251_missing(text: str) -> str | None:
    """The first character of a text that Windows-1251 lacks (None when it has them all)."""
    try:
        text.encode("cp1251")
    except UnicodeEncodeError as exc:
        return text[exc.start]
    return None


class OrganizationExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: OrganizationFilter = Field(default_factory=OrganizationFilter)
    format: ExportFormat = ExportFormat.XLSX
    headers: HeaderLanguage = HeaderLanguage.EN
    encoding: CsvEncoding = Field(
        default=CsvEncoding.UTF8,
        description="a CSV file's encoding: utf-8 (with a BOM) or cp1251 (Windows-1251; an"
        " organization holding a character it lacks is a 422); an .xlsx is always Unicode",
    )


def cell(row: Any, field: str, language: HeaderLanguage = HeaderLanguage.EN) -> Any:
    """A field's value as written in an export, so that an import reads it back unchanged:
    phones with their extension and kind, labels holding ``;`` in quotes, the status in the
    headers' language."""
    value = getattr(row, field)
    if field == "status" and language is HeaderLanguage.RU:
        return STATUS_RU.get(value, value)
    if field == "phones":
        return [
            phone_cell(phone["number"], phone.get("kind") or "work", phone.get("extension"))
            for phone in value or []
        ]
    if field in LABEL_FIELDS:
        return quote_labels(value or [])
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def header(language: HeaderLanguage, definitions: Sequence[AttributeDefinition]) -> list[str]:
    base = [ru if language is HeaderLanguage.RU else en for en, ru in COLUMNS]
    return base + [(d.label if language is HeaderLanguage.RU else d.key) for d in definitions]


def disposition(name: str, fmt: ExportFormat) -> str:
    stamp = datetime.now(UTC).strftime("%Y%m%d-%H%M%S")
    filename = f"{name}-{stamp}.{fmt.value}"
    ascii_name = filename.encode("ascii", "replace").decode().replace("?", "_")
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}"
