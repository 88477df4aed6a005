"""The direction rule.

* Reads: a principal sees a record when it shares a direction with it, or when it sees all
  directions (admin, security officer, services). Invisible records behave as missing (404),
  never 403, so their existence is not disclosed.
* Writes: a user may only put a record in directions it belongs to (403 otherwise); admins and
  services may write in any direction.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, Protocol, Self, TypeVar

from sqlalchemy import SQLColumnExpression, cast, false, true, type_coerce
from sqlalchemy.dialects import postgresql
from sqlalchemy.dialects.postgresql import array
from sqlalchemy.sql import sqltypes
from sqlalchemy.sql.elements import ColumnElement

from ..http.problems import NotFound, ProblemError
from .principal import Principal, Role


class ForbiddenDirectionError(ProblemError):
    """403: a write targets directions the caller does not belong to."""

    def __init__(self, directions: Iterable[str]) -> None:
        forbidden = sorted(set(directions))
        super().__init__(
            403,
            "Forbidden direction",
            "You may only create or move records in directions you belong to.",
            kind="forbidden-direction",
            directions=forbidden,
        )


class _Filterable(Protocol):
    def where(self, *whereclause: ColumnElement[bool]) -> Self: ...


_StmtT = TypeVar("_StmtT", bound=_Filterable)


def _as_array_column(expression: SQLColumnExpression[Any]) -> ColumnElement[Any]:
    """The PostgreSQL ARRAY column expression behind a Core column or an ORM attribute."""
    column: ColumnElement[Any] | None = None
    if isinstance(expression, ColumnElement):
        column = expression
    else:
        clause_element = getattr(expression, "__clause_element__", None)  # ORM attributes
        element = clause_element() if callable(clause_element) else None
        if isinstance(element, ColumnElement):
            column = element
    if column is None or not isinstance(column.type, sqltypes.ARRAY):
        raise TypeError("directions_column must be an ARRAY column (or ORM attribute)")
    if not isinstance(column.type, postgresql.ARRAY):  # generic sqlalchemy.ARRAY: no overlap()
        column = type_coerce(column, postgresql.ARRAY(column.type.item_type))
    return column


def visible_to(
    principal: Principal, directions_column: SQLColumnExpression[Any]
) -> ColumnElement[bool]:
    """SQL condition: rows whose PostgreSQL ``ARRAY`` of directions the principal may read.

    ``directions_column`` is a Core column or an ORM attribute of type ``ARRAY(String)`` /
    ``ARRAY(Text)``. Gives ``TRUE`` for principals who see all directions, ``FALSE`` for
    principals without any direction, otherwise ``directions_column && ARRAY[...]`` (overlap).
    """
    column = _as_array_column(directions_column)
    if principal.sees_all_directions:
        return true()
    if not principal.directions:
        return false()
    # Cast to the column's own array type: elements are bound as VARCHAR and PostgreSQL has no
    # `text[] && varchar[]` operator, so an ARRAY(Text) column would otherwise fail at runtime.
    wanted = cast(array(sorted(principal.directions)), column.type)
    condition: ColumnElement[bool] = column.overlap(wanted)
    return condition


def apply_direction_filter(
    stmt: _StmtT, principal: Principal, directions_column: SQLColumnExpression[Any]
) -> _StmtT:
    """``stmt.where(visible_to(principal, directions_column))``."""
    return stmt.where(visible_to(principal, directions_column))


def ensure_visible(
    principal: Principal,
    directions: Iterable[str],
    detail: str = "The resource does not exist.",
) -> None:
    """Raise :class:`NotFound` (404, never 403) when a record with ``directions`` is not visible."""
    if not principal.can_see(directions):
        raise NotFound(detail)


def writable_directions(principal: Principal, requested: Iterable[str]) -> frozenset[str]:
    """The ``requested`` directions, once checked writable by ``principal``.

    Admins and services may write in any direction; everybody else only in directions they
    belong to (seeing all directions, as a security officer does, does not grant writing).
    Raises :class:`ForbiddenDirectionError` (403) listing the refused directions.
    """
    wanted = frozenset(requested)
    if may_write(principal, wanted):
        return wanted
    raise ForbiddenDirectionError(wanted - principal.directions)


def may_write(principal: Principal, directions: Iterable[str]) -> bool:
    """Whether ``principal`` may write records of all these directions (no exception)."""
    if principal.is_service or principal.has_role(Role.ADMIN):
        return True
    return frozenset(directions) <= principal.directions
