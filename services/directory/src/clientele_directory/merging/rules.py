"""Choosing the values of two records being merged (no I/O): what organizations and persons share.

The caller names the fields whose value comes from the other record (``take``) and sets others
explicitly (``values``); everything else follows one default: the survivor's value stays, an
empty one is filled from the other, and list fields are united. Custom attributes are chosen per
key: ``take`` may name ``attributes`` (all the other's values) or ``attributes.<key>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

ATTRIBUTES = "attributes"
_ATTRIBUTE_PREFIX = ATTRIBUTES + "."


def _error(name: str, message: str, kind: str) -> dict[str, Any]:
    return {"loc": (name,), "msg": message, "type": kind}


def _attribute_key(name: str) -> str | None:
    """``key`` of a choice named ``attributes.<key>``."""
    key = name.removeprefix(_ATTRIBUTE_PREFIX)
    return key if key != name and key else None


def choice_errors(
    fields: Iterable[str], take: Iterable[str], values: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Pydantic-shaped errors for choices that name no field (or no attribute key form)."""
    known = {*fields, ATTRIBUTES}
    unknown = {name for name in take if name not in known and _attribute_key(name) is None}
    unknown |= {name for name in values if name not in known}
    errors = [_error(name, "no such field", "unknown_field") for name in sorted(unknown)]
    if ATTRIBUTES in values and not isinstance(values[ATTRIBUTES], Mapping):
        errors.append(_error(ATTRIBUTES, "an object of attribute values", "type"))
    return errors


def _empty(value: Any) -> bool:
    return value in (None, "", [], {})


def chosen_values(
    mine: Mapping[str, Any],
    theirs: Mapping[str, Any],
    fields: Iterable[str],
    *,
    united: frozenset[str],
    take: Iterable[str],
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """The merged plain fields (JSON values, not yet validated): ``values`` win, then ``take``,
    then the default (``united`` lists joined, the survivor's own items first)."""
    wanted = set(take)
    merged: dict[str, Any] = {}
    for name in fields:
        if name in values:
            merged[name] = values[name]
        elif name in wanted:
            merged[name] = theirs[name]
        elif name in united:
            merged[name] = [*mine[name], *(v for v in theirs[name] if v not in mine[name])]
        elif _empty(mine[name]):
            merged[name] = theirs[name]
        else:
            merged[name] = mine[name]
    return merged


def chosen_attributes(
    mine: Mapping[str, Any], theirs: Mapping[str, Any], take: Iterable[str]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(merged values, patch)``: the survivor's values with the other's missing ones added,
    and the patch ``take`` asks for on top of them (``None`` clears a key the other lacks), to
    be validated against the definitions like any patch."""
    merged = {**theirs, **mine}
    wanted = set(take)
    if ATTRIBUTES in wanted:
        keys = set(merged)
    else:
        keys = {key for name in wanted if (key := _attribute_key(name)) is not None}
    patch = {key: theirs.get(key) for key in sorted(keys) if merged.get(key) != theirs.get(key)}
    return merged, patch


def retargeted(
    values: Mapping[str, Any], keys: Iterable[str], old: str, new: str
) -> dict[str, Any]:
    """``values`` with the reference attributes ``keys`` that point at ``old`` pointing at
    ``new`` (a record that referred to the merged one now refers to the survivor)."""
    wanted = set(keys)
    return {key: new if key in wanted and value == old else value for key, value in values.items()}


SHARED_IDENTIFIER = 2.0
"""What each kind of identifier two records share (an INN, an e-mail, a phone) adds to a duplicate
candidate's score; a similar name adds its similarity (0..1)."""


def duplicate_score(shared: int, name_similarity: float, adjustment: float = 0.0) -> float:
    """The score that ranks a duplicate candidate (organizations and persons alike):
    SHARED_IDENTIFIER per kind of identifier shared, plus the name similarity and ``adjustment``."""
    return round(SHARED_IDENTIFIER * shared + name_similarity + adjustment, 3)
