"""The unwanted counterparty register."""

from __future__ import annotations

from typing import Any

from sqlalchemy import literal
from sqlalchemy.sql.elements import ColumnElement


def organization_blocked_expr() -> ColumnElement[Any]:
    """SQL: the organization row matches an active register entry."""
    return literal(False)


def person_blocked_expr() -> ColumnElement[Any]:
    """SQL: the person row matches an active register entry."""
    return literal(False)
