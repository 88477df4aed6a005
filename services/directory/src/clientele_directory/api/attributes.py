"""Custom attribute definitions (administrators write, everybody reads) and what the record
endpoints need of them: validating a record's values and turning filter conditions into SQL."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date
from decimal import Decimal
from typing import Annotated, Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.dependencies import CurrentPrincipal, require_roles
from clientele_shared.auth.principal import Principal, Role
from clientele_shared.http.concurrency import IfMatch, check_version, etag, required_versions
from clientele_shared.http.params import EntryCursor
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.runtime import CurrentRuntime
from clientele_shared.service_layer import AuditEntry
from fastapi import APIRouter, Depends, Query, Response, status
from sqlalchemy import ColumnElement, Date, Numeric, and_, cast, func, insert, not_, or_, select
from sqlalchemy import update as sql_update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.api.common import audit, audit_trail
from clientele_directory.domain.attributes import (
    AttributeDefinition,
    AttributeDefinitionDraft,
    AttributeDefinitionPatch,
    AttributeErrors,
    AttributeType,
    AttributeValueError,
    EntityKind,
    apply_attribute_patch,
    normalized_condition,
    patch_definition,
    references,
)
from clientele_directory.domain.search import OrganizationFilter
from clientele_directory.tables import attribute_definitions, organizations, persons
from clientele_directory.values import diff
from clientele_directory.visibility import person_visible

router = APIRouter(prefix="/v1/attributes", tags=["custom attributes"])
Admin = Annotated[Principal, Depends(require_roles(Role.ADMIN))]
KIND = "attribute_definition"
_NOT_FOUND = "No such attribute."
_TABLES = {EntityKind.ORGANIZATION: organizations, EntityKind.PERSON: persons}


def _definition(row: Any) -> AttributeDefinition:
    return AttributeDefinition.model_validate(row, from_attributes=True)


async def definitions_for(
    session: AsyncSession, kind: EntityKind | str
) -> dict[str, AttributeDefinition]:
    """Every definition of a kind of record, archived ones too, by key."""
    rows = (
        await session.execute(
            select(attribute_definitions).where(
                attribute_definitions.c.entity_kind == EntityKind(kind).value
            )
        )
    ).all()
    return {row.key: _definition(row) for row in rows}


async def check_references(
    session: AsyncSession,
    principal: Principal,
    found: list[tuple[str, EntityKind, uuid.UUID]],
) -> None:
    """422 for a reference to a record that does not exist, is deleted or is invisible to the
    principal (an invisible record is never confirmed to exist)."""
    errors = []
    for key, kind, record_id in found:
        if kind is EntityKind.ORGANIZATION:
            seen = await session.scalar(
                select(organizations.c.id).where(
                    organizations.c.id == record_id,
                    organizations.c.deleted_at.is_(None),
                    visible_to(principal, organizations.c.directions),
                )
            )
        else:
            seen = await session.scalar(
                select(persons.c.id).where(
                    persons.c.id == record_id,
                    persons.c.deleted_at.is_(None),
                    person_visible(principal),
                )
            )
        if seen is None:
            errors.append(
                {"loc": ("attributes", key), "msg": f"no such {kind.value}", "type": "reference"}
            )
    if errors:
        raise invalid(errors)


async def resolve_attributes(
    session: AsyncSession,
    principal: Principal,
    kind: EntityKind,
    current: Mapping[str, Any],
    patch: Mapping[str, Any] | None,
    *,
    creating: bool,
) -> dict[str, Any]:
    """A record's attribute values after ``patch``, validated (422 with every problem)."""
    definitions = await definitions_for(session, kind)
    try:
        values = apply_attribute_patch(definitions, current, patch, creating=creating)
    except AttributeErrors as exc:
        raise invalid(exc.errors) from None
    given = patch if patch is not None else {}
    changed = {key: values[key] for key in given if key in values}
    await check_references(session, principal, references(definitions, changed))
    return values


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


async def attribute_conditions(
    session: AsyncSession, kind: EntityKind, flt: OrganizationFilter
) -> list[ColumnElement[bool]]:
    """SQL conditions of a filter's ``attributes`` (422 for unknown keys, operators that do not
    apply to the type, or values that do not fit). Archived attributes may be filtered on:
    their values are kept."""
    if not flt.attributes:
        return []
    definitions = await definitions_for(session, kind)
    column = _TABLES[kind].c.attributes
    conditions = []
    errors = []
    for key, condition in flt.attributes.items():
        definition = definitions.get(key)
        if definition is None:
            errors.append(
                {"loc": ("filter", "attributes", key), "msg": "no such attribute", "type": "key"}
            )
            continue
        try:
            normalized = normalized_condition(definition, condition.given())
        except AttributeValueError as exc:
            errors.append({"loc": ("filter", "attributes", key), "msg": str(exc), "type": "value"})
            continue
        conditions.append(condition_sql(column, definition, normalized))
    if errors:
        raise invalid(errors)
    return conditions


# --- definitions -----------------------------------------------------------------------------


async def _load(
    session: AsyncSession, definition_id: uuid.UUID, *, for_update: bool = False
) -> AttributeDefinition:
    stmt = select(attribute_definitions).where(attribute_definitions.c.id == definition_id)
    if for_update:
        stmt = stmt.with_for_update()
    row = (await session.execute(stmt)).first()
    if row is None:
        raise NotFound(_NOT_FOUND)
    return _definition(row)


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_definition(
    draft: AttributeDefinitionDraft, principal: Admin, runtime: CurrentRuntime, response: Response
) -> AttributeDefinition:
    """Define an attribute (administrators). Its key, kind and type never change; a key stays
    taken by an archived attribute (restore it instead)."""
    definition_id = uuid.uuid4()
    async with runtime.sessions() as session, session.begin():
        try:
            async with session.begin_nested():
                row = (
                    await session.execute(
                        insert(attribute_definitions)
                        .values(
                            id=definition_id,
                            **draft.model_dump(mode="json"),
                            version=1,
                            created_by=principal.subject,
                            updated_by=principal.subject,
                        )
                        .returning(attribute_definitions)
                    )
                ).one()
        except IntegrityError:
            raise Conflict(
                f"The {draft.entity_kind.value} attribute {draft.key!r} exists (perhaps archived)."
            ) from None
        definition = _definition(row)
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=definition_id,
            action="created",
            version=1,
            changes={
                name: {"old": None, "new": value}
                for name, value in draft.model_dump(mode="json").items()
                if value not in (None, [], False)
            },
        )
    response.headers["ETag"] = etag(1)
    response.headers["Location"] = f"/v1/attributes/{definition_id}"
    return definition


@router.get("")
async def list_definitions(
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    entity_kind: EntityKind | None = None,
    include_archived: Annotated[bool, Query(description="archived ones too")] = False,
) -> list[AttributeDefinition]:
    """The attributes records may carry (every signed-in user reads them)."""
    stmt = select(attribute_definitions).order_by(
        attribute_definitions.c.entity_kind, attribute_definitions.c.key
    )
    if entity_kind is not None:
        stmt = stmt.where(attribute_definitions.c.entity_kind == entity_kind.value)
    if not include_archived:
        stmt = stmt.where(attribute_definitions.c.archived.is_(False))
    async with runtime.sessions() as session:
        rows = (await session.execute(stmt)).all()
    return [_definition(row) for row in rows]


@router.get("/{definition_id}")
async def get_definition(
    definition_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    response: Response,
) -> AttributeDefinition:
    async with runtime.sessions() as session:
        definition = await _load(session, definition_id)
    response.headers["ETag"] = etag(definition.version)
    return definition


async def _change(
    runtime: CurrentRuntime,
    principal: Principal,
    definition_id: uuid.UUID,
    patch: AttributeDefinitionPatch,
    if_match: str | None,
    action: str,
) -> AttributeDefinition:
    wanted = required_versions(if_match)
    async with runtime.sessions() as session, session.begin():
        current = await _load(session, definition_id, for_update=True)
        check_version(wanted, current.version)
        try:
            patched = patch_definition(current, patch)
        except ValueError as exc:
            raise invalid_field("options", str(exc)) from None
        changes = diff(current.fields(), patched.fields(), current.fields())
        if not changes:
            return current
        version = current.version + 1
        row = (
            await session.execute(
                sql_update(attribute_definitions)
                .where(attribute_definitions.c.id == definition_id)
                .values(
                    **{name: change["new"] for name, change in changes.items()},
                    version=version,
                    updated_by=principal.subject,
                    updated_at=func.now(),
                )
                .returning(attribute_definitions)
            )
        ).one()
        await audit(
            session,
            principal,
            kind=KIND,
            entity_id=definition_id,
            action=action if "archived" in changes else "updated",
            version=version,
            changes=changes,
        )
    return _definition(row)


@router.patch("/{definition_id}")
async def update_definition(
    definition_id: uuid.UUID,
    patch: AttributeDefinitionPatch,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> AttributeDefinition:
    """Change the label, description, required flag or options, or archive/restore
    (``archived``); If-Match required."""
    archived = patch.archived
    action = "updated" if archived is None else ("archived" if archived else "restored")
    definition = await _change(runtime, principal, definition_id, patch, if_match, action)
    response.headers["ETag"] = etag(definition.version)
    return definition


@router.delete("/{definition_id}")
async def archive_definition(
    definition_id: uuid.UUID,
    principal: Admin,
    runtime: CurrentRuntime,
    response: Response,
    if_match: IfMatch = None,
) -> AttributeDefinition:
    """Remove an attribute: it is archived, never dropped. Records keep their values (read,
    filtered on, exported); no new values are taken until it is restored."""
    patch = AttributeDefinitionPatch(archived=True)
    definition = await _change(runtime, principal, definition_id, patch, if_match, "archived")
    response.headers["ETag"] = etag(definition.version)
    return definition


@router.get("/{definition_id}/audit")
async def definition_audit(
    definition_id: uuid.UUID,
    principal: CurrentPrincipal,
    runtime: CurrentRuntime,
    after: EntryCursor = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await _load(session, definition_id)
        return await audit_trail(session, KIND, definition_id, after=after, limit=limit)
