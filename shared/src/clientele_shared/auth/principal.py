"""Who is calling: the authenticated principal and the role vocabulary."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    """The roles Clientele knows. Members are plain strings, so ``Role.SALES == "sales"``."""

    ADMIN = "admin"
    SECURITY_OFFICER = "security_officer"
    HEAD_OF_SALES = "head_of_sales"
    SALES = "sales"
    MARKETER = "marketer"
    SERVICE = "service"


ALL_ROLES: frozenset[str] = frozenset(Role)
"""Every role name Clientele knows."""

ALL_DIRECTIONS_ROLES: frozenset[str] = frozenset({Role.ADMIN, Role.SECURITY_OFFICER})
"""Roles whose holders see every direction (service principals see every direction too)."""

WRITER_ROLES: tuple[str, ...] = (
    Role.ADMIN,
    Role.HEAD_OF_SALES,
    Role.SALES,
    Role.MARKETER,
    Role.SERVICE,
)
"""Roles that may write business records (within their directions; admins and services
anywhere). A security officer reads every direction and keeps the unwanted-counterparty
register, but writes nothing else."""

PrincipalKind = Literal["user", "service"]


class Principal(BaseModel):
    """An authenticated caller: a person or another Clientele service.

    ``directions`` are the direction codes (sales territories / business units) the principal
    belongs to; they decide which records the principal can read.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    subject: str
    kind: PrincipalKind = "user"
    roles: frozenset[str] = frozenset()
    directions: frozenset[str] = frozenset()
    service: str | None = None
    name: str | None = None
    email: str | None = None
    expires_at: float | None = None
    """When the token it came from expires (seconds since the epoch): a long-lived connection,
    such as a live stream, ends then."""
    confined: bool = False
    """A service acting for records of its ``directions`` only (an automation rule's call for
    one deal): it reads and writes as a member of those directions, never everywhere."""

    @property
    def is_service(self) -> bool:
        """True for a service-to-service caller with a service's reach (every direction); a
        confined one is not."""
        return self.kind == "service" and not self.confined

    @property
    def sees_all_directions(self) -> bool:
        """Admins, security officers and services read records of every direction."""
        return self.is_service or not self.roles.isdisjoint(ALL_DIRECTIONS_ROLES)

    def has_role(self, *roles: str) -> bool:
        """True when the principal holds at least one of ``roles``."""
        return not self.roles.isdisjoint(roles)

    def can_see(self, directions: Iterable[str]) -> bool:
        """True when a record tagged with ``directions`` is visible to the principal.

        A record without any direction is only visible to principals who see all directions.
        """
        return self.sees_all_directions or not self.directions.isdisjoint(directions)
