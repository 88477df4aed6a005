"""SQL of a record's blocked flag: which organizations and persons match an active entry of the
unwanted-counterparty register. The flag is computed on read (an EXISTS over the active
entries), never stored; every read of a record composes these predicates."""

from __future__ import annotations

from sqlalchemy import ColumnElement, and_, any_, exists, or_, select

from clientele_directory.tables import organizations, persons, unwanted_register

register = unwanted_register
active = register.c.removed_at.is_(None)


def matches_organization() -> ColumnElement[bool]:
    """SQL: an entry names the organization row, its INN or one of its e-mail domains."""
    return or_(
        register.c.organization_id == organizations.c.id,
        and_(organizations.c.inn.is_not(None), register.c.inn == organizations.c.inn),
        register.c.email_domain == any_(organizations.c.email_domains),
    )


def matches_person() -> ColumnElement[bool]:
    """SQL: an entry names the person row or one of his e-mail domains."""
    return or_(
        register.c.person_id == persons.c.id,
        register.c.email_domain == any_(persons.c.email_domains),
    )


def organization_blocked_expr() -> ColumnElement[bool]:
    """SQL: the organization row matches an active register entry."""
    return exists(select(1).select_from(register).where(active, matches_organization()))


def person_blocked_expr() -> ColumnElement[bool]:
    """SQL: the person row matches an active register entry."""
    return exists(select(1).select_from(register).where(active, matches_person()))
