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
from clientele_directory.imports.rules import LABEL_FIELDS, phone_cell, quote_labels
from clientele_directory.search.rules import OrganizationFilter


class ExportFormat(enum.StrEnum):
    XLSX = "xlsx"
    CSV = "csv"


class HeaderLanguage(enum.StrEnum):
    EN = "en"
    RU = "ru"


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


class OrganizationExport(BaseModel):
    model_config = ConfigDict(extra="forbid")

    filter: OrganizationFilter = Field(default_factory=OrganizationFilter)
    format: ExportFormat = ExportFormat.XLSX
    headers: HeaderLanguage = HeaderLanguage.EN


def cell(row: Any, field: str) -> Any:
    """A field's value as written in an export, so that an import reads it back unchanged:
    phones with their extension and kind, labels holding ``;`` in quotes."""
    value = getattr(row, field)
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
