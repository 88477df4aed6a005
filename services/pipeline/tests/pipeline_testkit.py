"""Helpers for the pipeline tests: the shared service stack and pipelines' stages."""

from __future__ import annotations

from typing import Any

from clientele_testkit.stack import Stack

__all__ = ["DEFAULT_STAGES", "Stack", "stages"]


def stages(*specs: tuple[str, str]) -> list[dict[str, Any]]:
    return [{"name": name, "kind": kind} for name, kind in specs]


DEFAULT_STAGES = stages(
    ("Новая", "open"), ("Переговоры", "open"), ("Выиграна", "won"), ("Проиграна", "lost")
)
