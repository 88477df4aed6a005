"""SQL of custom attributes: their definitions and conditions on the values records carry."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import ColumnElement, Date, Numeric, and_, cast, insert, not_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import AttributeDefinition, AttributeType, EntityKind
from clientele_directory.tables import attribute_definitions, organizations, persons
from clientele_directory.visibility import person_visible

TABLES = {EntityKind.ORGANIZATION: organizations, EntityKind.PERSON: persons}


def to_definition(row: Any) -> AttributeDefinition:
    return AttributeDefinition.model_validate(row, from_attributes=True)


async def definitions(session: AsyncSession, kind: EntityKind) -> list[AttributeDefinition]:
    """Every definition of a kind of record, archived ones too."""
    rows = (
        await session.execute(
            select(attribute_definitions).where(attribute_definitions.c.entity_kind == kind.value)
        )
    ).all()
    return [to_definition(row) for row in rows]


async def listed(
    session: AsyncSession, kind: EntityKind | None, *, include_archived: bool
) -> list[AttributeDefinition]:
    stmt = select(attribute_definitions).order_by(
        attribute_definitions.c.entity_kind, attribute_definitions.c.key
    )
    if kind is not None:
        stmt = stmt.where(attribute_definitions.c.entity_kind == kind.value)
    if not include_archived:
        stmt = stmt.where(attribute_definitions.c.archived.is_(False))
    return [to_definition(row) for row in (await session.execute(stmt)).all()]


async def load(
    session: AsyncSession, definition_id: uuid.UUID, *, for_update: bool = False
) -> AttributeDefinition | None:
    stmt = select(attribute_definitions).where(attribute_definitions.c.id == definition_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    return to_definition(row) if row is not None else None


async def insert_definition(session: AsyncSession, values: dict[str, Any]) -> AttributeDefinition:
    row = (
        await session.execute(
            insert(attribute_definitions).values(**values).returning(attribute_definitions)
        )
    ).one()
    return to_definition(row)


async def visible_record(
    session: AsyncSession, principal: Principal, kind: EntityKind, record_id: uuid.UUID
) -> bool:
    """Whether a live record of the kind exists that the principal sees."""
    if kind is EntityKind.ORGANIZATION:
        stmt = select(organizations.c.id).where(
            organizations.c.id == record_id,
            organizations.c.deleted_at.is_(None),
            visible_to(principal, organizations.c.directions),
        )
    else:
        stmt = select(persons.c.id).where(
            persons.c.id == record_id,
            persons.c.deleted_at.is_(None),
            person_visible(principal),
        )
    return await session.scalar(stmt) is not None


def _typed(kind: AttributeType, value: Any) -> Any:
    """Stored JSON values as the database driver binds them (Decimal, date)."""
    if isinstance(value, list):
        return [_typed(kind, item) for item in value]
    if kind is AttributeType.NUMBER:
        return Decimal(str(value))
    return date.fromisoformat(value)


def condition_sql(
    column: Any, definition: AttributeDefinition, condition: Mapping[str, Any]
) -> ColumnElement[bool]:
    """SQL for one normalized condition on the JSON column of attribute values.

    Equality goes through JSON containment (``@>``, served by the GIN index); ranges cast the
    stored text, which validation guarantees to be a number or an ISO date.
    """
    key = definition.key
    kind = definition.type
    parts: list[ColumnElement[bool]] = []
    value_text = column[key].astext
    for operator, value in condition.items():
        if operator == "exists":
            has = column.has_key(key)
            parts.append(has if value else not_(has))
        elif kind is AttributeType.MULTI_ENUM and operator == "contains":
            parts.append(column.contains({key: [value]}))
        elif kind is AttributeType.MULTI_ENUM and operator == "in":
            parts.append(or_(*(column.contains({key: [item]}) for item in value)))
        elif operator == "contains":
            escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
            parts.append(value_text.ilike(f"%{escaped}%", escape="\\"))
        elif kind is AttributeType.MONEY:
            amount = cast(column[key]["amount"].astext, Numeric)
            wanted = Decimal(value["amount"])
            bound = {"eq": amount == wanted, "gte": amount >= wanted}.get(
                operator, amount <= wanted
            )
            parts.append(bound)
            if "currency" in value:
                parts.append(column[key]["currency"].astext == value["currency"])
        elif operator in ("gte", "lte") or (
            kind in (AttributeType.NUMBER, AttributeType.DATE) and operator in ("eq", "in")
        ):
            typed = cast(value_text, Numeric if kind is AttributeType.NUMBER else Date)
            value = _typed(kind, value)
            if operator == "gte":
                parts.append(typed >= value)
            elif operator == "lte":
                parts.append(typed <= value)
            elif operator == "eq":
                parts.append(typed == value)
            else:
                parts.append(typed.in_(value))
        elif operator == "eq":
            parts.append(column.contains({key: value}))
        else:  # in
            parts.append(or_(*(column.contains({key: item}) for item in value)))
    return and_(*parts)
