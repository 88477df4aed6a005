"""SQL predicates every feature composes: who sees a person (through his own directions or a
live employment at a live organization one sees)."""

from __future__ import annotations

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from sqlalchemy import ColumnElement, FromClause, and_, exists, or_, select, true

from clientele_directory.tables import employments, organizations, persons

live_employment_at_live_org = and_(
    employments.c.deleted_at.is_(None),
    organizations.c.deleted_at.is_(None),
)
employment_orgs = employments.join(
    organizations, organizations.c.id == employments.c.organization_id
)


def person_visible(principal: Principal, person: FromClause = persons) -> ColumnElement[bool]:
    """SQL: the person row (of ``persons`` or an alias of it) is visible to the principal."""
    if principal.sees_all_directions:
        return true()
    through_employment = exists(
        select(1)
        .select_from(employment_orgs)
        .where(
            employments.c.person_id == person.c.id,
            live_employment_at_live_org,
            visible_to(principal, organizations.c.directions),
        )
    )
    return or_(visible_to(principal, person.c.directions), through_employment)


def merged_into_visible(principal: Principal) -> ColumnElement[bool]:
    """SQL: the person row was merged into a live person the principal sees (a merged person is
    seen through its survivor: its employments went there)."""
    survivor = persons.alias("survivor")
    return and_(
        persons.c.merged_into.is_not(None),
        exists(
            select(1)
            .select_from(survivor)
            .where(
                survivor.c.id == persons.c.merged_into,
                survivor.c.deleted_at.is_(None),
                person_visible(principal, survivor),
            )
        ),
    )
