"""Custom attribute operations: definitions (administrators write, everybody reads), and what
the record features need of them: validating a record's values and filter conditions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, Protocol, TypeVar

from clientele_shared.auth.principal import Principal
from clientele_shared.http.concurrency import check_version
from clientele_shared.http.problems import Conflict, NotFound, invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from clientele_shared.service_layer import AuditEntry, Versioned, audit_trail, write_version
from pydantic import BaseModel
from sqlalchemy import ColumnElement
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes import queries
from clientele_directory.attributes.rules import (
    AttributeDefinition,
    AttributeDefinitionDraft,
    AttributeDefinitionPatch,
    AttributeErrors,
    AttributeValueError,
    EntityKind,
    apply_attribute_patch,
    normalized_condition,
    patch_definition,
    references,
)
from clientele_directory.search.rules import OrganizationFilter
from clientele_directory.tables import attribute_definitions, audit_log
from clientele_directory.values import diff
from clientele_directory.work import work

KIND = "attribute_definition"
DEFINITION = Versioned(attribute_definitions, KIND)
_NOT_FOUND = "No such attribute."


async def definitions_for(
    session: AsyncSession, kind: EntityKind | str
) -> dict[str, AttributeDefinition]:
    """Every definition of a kind of record, archived ones too, by key."""
    return {d.key: d for d in await queries.definitions(session, EntityKind(kind))}


async def check_references(
    session: AsyncSession,
    principal: Principal,
    found: list[tuple[str, EntityKind, uuid.UUID]],
) -> None:
    """422 for a reference to a record that does not exist, is deleted or is invisible to the
    principal (an invisible record is never confirmed to exist)."""
    errors = [
        {"loc": ("attributes", key), "msg": f"no such {kind.value}", "type": "reference"}
        for key, kind, record_id in found
        if not await queries.visible_record(session, principal, kind, record_id)
    ]
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
    return await resolve_with(session, principal, definitions, current, patch, creating=creating)


async def resolve_with(
    session: AsyncSession,
    principal: Principal,
    definitions: Mapping[str, AttributeDefinition],
    current: Mapping[str, Any],
    patch: Mapping[str, Any] | None,
    *,
    creating: bool,
) -> dict[str, Any]:
    """:func:`resolve_attributes` with the kind's definitions read already (a batch's)."""
    try:
        values = apply_attribute_patch(definitions, current, patch, creating=creating)
    except AttributeErrors as exc:
        raise invalid(exc.errors) from None
    given = patch if patch is not None else {}
    changed = {key: values[key] for key in given if key in values}
    await check_references(session, principal, references(definitions, changed))
    return values


M = TypeVar("M", bound=BaseModel)


class AttributePatch(Protocol):
    """A merge patch of a record that may carry custom attribute values."""

    @property
    def attributes(self) -> Mapping[str, Any] | None: ...
    @property
    def model_fields_set(self) -> set[str]: ...


async def patch_attributes(
    session: AsyncSession,
    principal: Principal,
    kind: EntityKind,
    current: Mapping[str, Any],
    patch: AttributePatch,
    patched: M,
) -> M:
    """``patched`` (a record after ``patch``) with its attribute values after the patch's
    ``attributes``, validated, when the patch names them."""
    if "attributes" not in patch.model_fields_set:
        return patched
    attributes = await resolve_attributes(
        session, principal, kind, current, patch.attributes, creating=False
    )
    return patched.model_copy(update={"attributes": attributes})


async def attribute_conditions(
    session: AsyncSession, kind: EntityKind, flt: OrganizationFilter
) -> list[ColumnElement[bool]]:
    """SQL conditions of a filter's ``attributes`` (422 for unknown keys, operators that do not
    apply to the type, or values that do not fit). Archived attributes may be filtered on:
    their values are kept."""
    if not flt.attributes:
        return []
    definitions = await definitions_for(session, kind)
    column = queries.TABLES[kind].c.attributes
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
        conditions.append(queries.condition_sql(column, definition, normalized))
    if errors:
        raise invalid(errors)
    return conditions


async def _load(
    session: AsyncSession, definition_id: uuid.UUID, *, for_update: bool = False
) -> AttributeDefinition:
    definition = await queries.load(session, definition_id, for_update=for_update)
    if definition is None:
        raise NotFound(_NOT_FOUND)
    return definition


async def create_definition(
    *, runtime: ServiceRuntime, principal: Principal, draft: AttributeDefinitionDraft
) -> AttributeDefinition:
    """Define an attribute. Its key, kind and type never change; a key stays taken by an
    archived attribute (409: restore it instead)."""
    definition_id = uuid.uuid4()
    async with work(runtime, principal) as uow:
        try:
            async with uow.session.begin_nested():
                definition = await queries.insert_definition(
                    uow.session,
                    {
                        "id": definition_id,
                        **draft.model_dump(mode="json"),
                        "version": 1,
                        "created_by": principal.subject,
                        "updated_by": principal.subject,
                    },
                )
        except IntegrityError:
            raise Conflict(
                f"The {draft.entity_kind.value} attribute {draft.key!r} exists (perhaps archived)."
            ) from None
        await uow.audit(
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
    return definition


async def list_definitions(
    *, runtime: ServiceRuntime, entity_kind: EntityKind | None, include_archived: bool
) -> list[AttributeDefinition]:
    async with runtime.sessions() as session:
        return await queries.listed(session, entity_kind, include_archived=include_archived)


async def get_definition(
    *, runtime: ServiceRuntime, definition_id: uuid.UUID
) -> AttributeDefinition:
    async with runtime.sessions() as session:
        return await _load(session, definition_id)


async def change_definition(
    *,
    runtime: ServiceRuntime,
    principal: Principal,
    definition_id: uuid.UUID,
    patch: AttributeDefinitionPatch,
    expected: set[int],
    action: str,
) -> AttributeDefinition:
    """A new version of the definition (``action`` audits an archive or a restore)."""
    async with work(runtime, principal) as uow:
        current = await _load(uow.session, definition_id, for_update=True)
        check_version(expected, current.version)
        try:
            patched = patch_definition(current, patch)
        except ValueError as exc:
            raise invalid_field("options", str(exc)) from None
        changes = diff(current.fields(), patched.fields(), current.fields())
        if not changes:
            return current
        await write_version(
            uow,
            DEFINITION,
            definition_id,
            current=current.version,
            expected=expected,
            values={name: change["new"] for name, change in changes.items()},
            action=action if "archived" in changes else "updated",
            changes=changes,
        )
        return await _load(uow.session, definition_id)


async def definition_audit(
    *, runtime: ServiceRuntime, definition_id: uuid.UUID, after: int, limit: int
) -> list[AuditEntry]:
    async with runtime.sessions() as session:
        await _load(session, definition_id)
        return await audit_trail(session, audit_log, KIND, definition_id, after=after, limit=limit)
