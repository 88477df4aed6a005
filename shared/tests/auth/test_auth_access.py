"""The direction rule, compiled for PostgreSQL (no database needed)."""

from __future__ import annotations

from typing import Any

import pytest
from clientele_shared.auth import (
    ForbiddenDirectionError,
    Principal,
    Role,
    apply_direction_filter,
    ensure_visible,
    visible_to,
    writable_directions,
)
from clientele_shared.http.problems import NotFound
from sqlalchemy import ARRAY as GENERIC_ARRAY
from sqlalchemy import Column, Integer, MetaData, String, Table, Text, select, update
from sqlalchemy.dialects import postgresql
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.sql import ClauseElement

metadata = MetaData()
accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("directions", postgresql.ARRAY(String), nullable=False),
)


class Base(DeclarativeBase):
    pass


class Deal(Base):
    __tablename__ = "deals"
    id: Mapped[int] = mapped_column(primary_key=True)
    directions: Mapped[list[str]] = mapped_column(postgresql.ARRAY(Text))


def principal(*roles: str, directions: tuple[str, ...] = ()) -> Principal:
    return Principal(subject="u", roles=frozenset(roles), directions=frozenset(directions))


def compiled(clause: ClauseElement) -> tuple[str, dict[str, Any]]:
    result = clause.compile(dialect=postgresql.dialect())  # type: ignore[no-untyped-call]
    return str(result), dict(result.params)


SALES = principal(Role.SALES, directions=("south", "north"))


def test_sales_principal_gets_an_array_overlap() -> None:
    sql, params = compiled(visible_to(SALES, accounts.c.directions))
    assert sql.startswith("accounts.directions && ")
    assert "ARRAY[" in sql
    assert sorted(params.values()) == ["north", "south"]


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SECURITY_OFFICER])
def test_all_seeing_roles_get_true(role: str) -> None:
    assert compiled(visible_to(principal(role), accounts.c.directions))[0] == "true"


def test_service_gets_true() -> None:
    svc = Principal(subject="service:notifier", kind="service", service="notifier")
    assert compiled(visible_to(svc, accounts.c.directions))[0] == "true"


def test_principal_without_directions_gets_false() -> None:
    assert compiled(visible_to(principal(Role.SALES), accounts.c.directions))[0] == "false"


def test_text_array_is_compared_as_text_array() -> None:
    # PostgreSQL has no `text[] && varchar[]` operator: the array must take the column's type.
    sql, _ = compiled(visible_to(SALES, Deal.directions))
    assert sql.startswith("deals.directions && CAST(ARRAY[")
    assert sql.endswith("AS TEXT[])")


def test_generic_array_column_is_supported() -> None:
    table = Table("t", MetaData(), Column("directions", GENERIC_ARRAY(String)))
    sql, _ = compiled(visible_to(SALES, table.c.directions))
    assert sql.startswith("t.directions && ")


def test_non_array_column_is_a_programming_error() -> None:
    table = Table("t", MetaData(), Column("direction", String))
    with pytest.raises(TypeError, match="ARRAY"):
        visible_to(SALES, table.c.direction)
    with pytest.raises(TypeError, match="ARRAY"):
        visible_to(principal(Role.ADMIN), table.c.direction)


def test_apply_direction_filter_on_select_and_update() -> None:
    sql, _ = compiled(apply_direction_filter(select(Deal.id), SALES, Deal.directions))
    assert "WHERE deals.directions && " in sql
    sql, _ = compiled(
        apply_direction_filter(select(accounts), principal(Role.ADMIN), accounts.c.directions)
    )
    assert sql.endswith("WHERE true")
    sql, _ = compiled(
        apply_direction_filter(update(accounts).values(id=1), SALES, accounts.c.directions)
    )
    assert sql.startswith("UPDATE accounts")
    assert "WHERE accounts.directions && " in sql


def test_ensure_visible_hides_other_directions_as_not_found() -> None:
    ensure_visible(SALES, ["north", "east"])  # shares "north": no error
    ensure_visible(principal(Role.SECURITY_OFFICER), ["east"])
    with pytest.raises(NotFound) as caught:
        ensure_visible(SALES, ["east"])
    assert caught.value.status == 404
    with pytest.raises(NotFound):
        ensure_visible(SALES, [])


def test_writable_directions() -> None:
    assert writable_directions(SALES, ["north"]) == {"north"}
    assert writable_directions(principal(Role.ADMIN), ["east"]) == {"east"}
    svc = Principal(subject="service:pipeline", kind="service", service="pipeline")
    assert writable_directions(svc, ["east"]) == {"east"}
    with pytest.raises(ForbiddenDirectionError) as caught:
        writable_directions(SALES, ["north", "east", "west"])
    error = caught.value
    assert error.status == 403
    assert error.title == "Forbidden direction"
    assert error.extensions == {"directions": ["east", "west"]}
    # Seeing every direction does not allow writing into it.
    with pytest.raises(ForbiddenDirectionError):
        writable_directions(principal(Role.SECURITY_OFFICER), ["north"])
