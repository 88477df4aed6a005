from __future__ import annotations

import pytest
from clientele_shared.auth import ALL_ROLES, Principal, Role
from pydantic import ValidationError


def user(*roles: str, directions: tuple[str, ...] = ()) -> Principal:
    return Principal(subject="u1", roles=frozenset(roles), directions=frozenset(directions))


def test_role_constants_are_the_wire_names() -> None:
    assert {str(role) for role in Role} == {
        "admin",
        "security_officer",
        "head_of_sales",
        "sales",
        "marketer",
        "service",
    }
    assert {role.value for role in Role} == ALL_ROLES
    assert "sales" in frozenset({Role.SALES})  # members are plain strings


def test_sales_sees_only_shared_directions() -> None:
    alice = user(Role.SALES, directions=("north", "south"))
    assert not alice.sees_all_directions
    assert alice.can_see(["north"])
    assert alice.can_see(["east", "south"])
    assert not alice.can_see(["east"])
    assert not alice.can_see([])


def test_principal_without_directions_sees_nothing() -> None:
    assert not user(Role.HEAD_OF_SALES).can_see(["north"])


@pytest.mark.parametrize("role", [Role.ADMIN, Role.SECURITY_OFFICER])
def test_admin_and_security_officer_see_all_directions(role: Role) -> None:
    principal = user(role)
    assert principal.sees_all_directions
    assert principal.can_see(["anywhere"])
    assert principal.can_see([])


def test_service_principal_sees_all_directions() -> None:
    svc = Principal(subject="service:notifier", kind="service", service="notifier")
    assert svc.is_service
    assert svc.sees_all_directions
    assert svc.can_see(["north"])


@pytest.mark.parametrize("role", [Role.SALES, Role.MARKETER, Role.HEAD_OF_SALES])
def test_commercial_roles_do_not_see_all(role: Role) -> None:
    assert not user(role, directions=("north",)).sees_all_directions


def test_has_role_is_any_of() -> None:
    bob = user(Role.MARKETER)
    assert bob.has_role(Role.MARKETER)
    assert bob.has_role(Role.SALES, Role.MARKETER)
    assert not bob.has_role(Role.SALES, Role.ADMIN)
    assert not bob.has_role()


def test_principal_is_immutable_and_strict() -> None:
    alice = user(Role.SALES)
    with pytest.raises(ValidationError):
        alice.subject = "mallory"  # type: ignore[misc]
    with pytest.raises(ValidationError):
        Principal.model_validate({"subject": "x", "kind": "robot"})
