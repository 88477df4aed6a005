"""Helpers for the campaigns tests: a marketing event as a client creates it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clientele_testkit.stack import Stack

__all__ = ["Stack", "create_event", "event_body"]


def event_body(directions: Sequence[str] = ("north",), **extra: Any) -> dict[str, Any]:
    return {
        "kind": "seminar",
        "title": "Семинар для дилеров",
        "planned_start": "2026-03-10T10:00:00+03:00",
        "planned_end": "2026-03-10T18:00:00+03:00",
        "place": "Москва, конференц-зал",
        "directions": list(directions),
        "goals": ["Новые дилеры"],
        **extra,
    }


def create_event(
    stack: Stack, directions: Sequence[str] = ("north",), **extra: Any
) -> dict[str, Any]:
    response = stack.call(
        "POST", "/v1/campaigns", stack.user(directions), json=event_body(directions, **extra)
    )
    assert response.status_code == 201, response.text
    assert response.headers["ETag"] == 'W/"1"'
    return dict(response.json())
