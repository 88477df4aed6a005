"""Custom attributes (no I/O): definitions an administrator makes at run time, the validation of
values against them, merge patches of a record's values, their diffs, and filter conditions.

Values live in a JSON object on the record, keyed by the definition's ``key``:
string → text, number → JSON number, date → ``YYYY-MM-DD``, bool → true/false, enum → one of the
options, multi-enum → a list of options (in the options' order), money → ``{"amount": "12.50",
"currency": "RUB"}`` (the amount a decimal string, never a float), reference → the id of an
organization or person (its existence is checked by the caller, who has the database).
"""

from __future__ import annotations

import enum
import math
import re
import uuid
from collections.abc import Mapping
from datetime import date, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Self

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, model_validator
from pydantic_core import PydanticCustomError

from clientele_directory.values import LongText, ShortText, _clean_text


class EntityKind(enum.StrEnum):
    ORGANIZATION = "organization"
    PERSON = "person"


class AttributeType(enum.StrEnum):
    STRING = "string"
    NUMBER = "number"
    DATE = "date"
    BOOL = "bool"
    ENUM = "enum"
    MULTI_ENUM = "multi_enum"
    MONEY = "money"
    REFERENCE = "reference"


AttributeKey = Annotated[
    str, StringConstraints(strip_whitespace=True, pattern=r"^[a-z][a-z0-9_]{0,62}$")
]
Option = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200)]
MAX_STRING = 2000
MAX_OPTIONS = 500
MAX_DIGITS = 20
MONEY_PLACES = 4


def _options_valid(options: list[str]) -> list[str]:
    cleaned = [_clean_text(option) for option in options]
    folded = [option.casefold() for option in cleaned]
    if len(set(folded)) != len(folded):
        raise PydanticCustomError("options", "options must differ (case does not count)")
    return cleaned


class AttributeDefinitionDraft(BaseModel):
    """A new attribute: for which kind of record, its key (as in filters and imports), label
    and type; options for enums, the referenced kind for references."""

    model_config = ConfigDict(extra="forbid")

    entity_kind: EntityKind
    key: AttributeKey
    label: ShortText
    description: LongText | None = None
    type: AttributeType
    required: bool = False
    options: list[Option] = Field(default_factory=list, max_length=MAX_OPTIONS)
    reference_kind: EntityKind | None = None

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        self.options = _options_valid(self.options)
        enums = (AttributeType.ENUM, AttributeType.MULTI_ENUM)
        if self.type in enums and not self.options:
            raise PydanticCustomError("options", "an enum needs its options")
        if self.type not in enums and self.options:
            raise PydanticCustomError("options", "only enums have options")
        if (self.type is AttributeType.REFERENCE) != (self.reference_kind is not None):
            raise PydanticCustomError(
                "reference_kind", "a reference, and only a reference, names the kind it refers to"
            )
        return self


class AttributeDefinitionPatch(BaseModel):
    """What may change in a definition (its key, kind and type never do: values depend on
    them). Options may be added or renamed; values of a removed option stay until edited."""

    model_config = ConfigDict(extra="forbid")

    label: ShortText | None = None
    description: LongText | None = None
    required: bool | None = None
    options: list[Option] | None = Field(default=None, max_length=MAX_OPTIONS)
    archived: bool | None = None


class AttributeDefinition(BaseModel):
    """An attribute definition as stored and read."""

    id: uuid.UUID
    entity_kind: EntityKind
    key: str
    label: str
    description: str | None = None
    type: AttributeType
    required: bool
    options: list[str] = Field(default_factory=list)
    reference_kind: EntityKind | None = None
    archived: bool = False
    version: int
    created_at: datetime | None = None
    updated_at: datetime | None = None

    def fields(self) -> dict[str, Any]:
        return self.model_dump(
            mode="json", include={"label", "description", "required", "options", "archived"}
        )


def patch_definition(
    current: AttributeDefinition, patch: AttributeDefinitionPatch
) -> AttributeDefinition:
    """The definition after the patch (ValueError when the options would become invalid)."""
    given = {name: getattr(patch, name) for name in patch.model_fields_set}
    if "options" in given:
        if given["options"] is None:
            given["options"] = []
        try:
            given["options"] = _options_valid(given["options"])
        except PydanticCustomError as exc:
            raise ValueError(exc.message()) from None
        enums = (AttributeType.ENUM, AttributeType.MULTI_ENUM)
        if current.type in enums and not given["options"]:
            raise ValueError("an enum needs its options")
        if current.type not in enums and given["options"]:
            raise ValueError("only enums have options")
    for name in ("label", "required", "archived"):
        if name in given and given[name] is None:
            raise ValueError(f"{name} cannot be null")
    return current.model_copy(update=given)


# --- values ----------------------------------------------------------------------------------


class AttributeValueError(ValueError):
    """A value that does not fit its definition."""


_TRUE = {"true", "1", "yes", "y", "да", "д", "истина"}
_FALSE = {"false", "0", "no", "n", "нет", "н", "ложь"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")
_MONEY_TEXT = re.compile(r"^\s*([-+]?[\d\s\u00a0.,]+)\s*([A-Za-z]{3}|₽|руб\.?)?\s*$")


def _decimal(raw: Any) -> Decimal:
    if isinstance(raw, bool):
        raise AttributeValueError("a number, not true/false")
    if isinstance(raw, float) and not math.isfinite(raw):
        raise AttributeValueError("a finite number")
    if isinstance(raw, int | float | Decimal):
        value = Decimal(str(raw))
    elif isinstance(raw, str):
        text = raw.strip().replace("\u00a0", "").replace(" ", "")
        if text.count(",") == 1 and "." not in text:
            text = text.replace(",", ".")  # a Russian decimal comma
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise AttributeValueError("not a number") from None
    else:
        raise AttributeValueError("not a number")
    if not value.is_finite():
        raise AttributeValueError("a finite number")
    if len(value.as_tuple().digits) > MAX_DIGITS:
        raise AttributeValueError(f"at most {MAX_DIGITS} digits")
    return value


def _number(raw: Any) -> int | float:
    value = _decimal(raw)
    if value == value.to_integral_value():
        return int(value)
    return float(value)


def _date(raw: Any) -> str:
    if isinstance(raw, datetime):
        return raw.date().isoformat()
    if isinstance(raw, date):
        return raw.isoformat()
    if not isinstance(raw, str):
        raise AttributeValueError("a date: YYYY-MM-DD or DD.MM.YYYY")
    text = raw.strip()
    for pattern in ("%Y-%m-%d", "%d.%m.%Y"):
        try:
            return datetime.strptime(text, pattern).date().isoformat()
        except ValueError:
            continue
    raise AttributeValueError("a date: YYYY-MM-DD or DD.MM.YYYY")


def _bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str):
        text = raw.strip().casefold()
        if text in _TRUE:
            return True
        if text in _FALSE:
            return False
    raise AttributeValueError("true or false")


def _option(definition: AttributeDefinition, raw: Any) -> str:
    if not isinstance(raw, str):
        raise AttributeValueError("one of the options (text)")
    wanted = raw.strip().casefold()
    for option in definition.options:
        if option.casefold() == wanted:
            return option
    shown = ", ".join(definition.options[:20])
    raise AttributeValueError(f"unknown option {raw.strip()!r}; one of: {shown}")


def _options(definition: AttributeDefinition, raw: Any) -> list[str]:
    if isinstance(raw, str):
        raw = [part for part in re.split(r"[;,\n]", raw) if part.strip()]
    if not isinstance(raw, list):
        raise AttributeValueError("a list of options")
    chosen = {_option(definition, item) for item in raw}
    return [option for option in definition.options if option in chosen]


def _money(raw: Any) -> dict[str, str]:
    if isinstance(raw, str):
        match = _MONEY_TEXT.match(raw)
        if not match:
            raise AttributeValueError(
                'money: {"amount": "12.50", "currency": "RUB"} or "12.50 RUB"'
            )
        currency = match.group(2) or ""
        raw = {
            "amount": match.group(1),
            "currency": "RUB" if currency in ("₽", "руб", "руб.") else currency,
        }
    if not isinstance(raw, Mapping) or set(raw) != {"amount", "currency"}:
        raise AttributeValueError('money: {"amount": "12.50", "currency": "RUB"}')
    amount = _decimal(raw["amount"])
    if amount.as_tuple().exponent < -MONEY_PLACES:  # type: ignore[operator]
        raise AttributeValueError(f"money has at most {MONEY_PLACES} decimal places")
    currency = raw["currency"]
    if not isinstance(currency, str) or not _CURRENCY.match(currency.strip().upper()):
        raise AttributeValueError("currency: an ISO 4217 code such as RUB, USD, EUR")
    return {"amount": format(amount.normalize(), "f"), "currency": currency.strip().upper()}


def _money_bound(raw: Any) -> dict[str, str]:
    """A bound of a money condition: an amount, with or without a currency."""
    amount_only = None
    if isinstance(raw, Mapping) and set(raw) == {"amount"}:
        amount_only = raw["amount"]
    elif isinstance(raw, str):
        match = _MONEY_TEXT.match(raw)
        if match and not match.group(2):
            amount_only = match.group(1)
    elif isinstance(raw, int | float | Decimal):
        amount_only = raw
    if amount_only is not None:
        return {"amount": format(_decimal(amount_only).normalize(), "f")}
    return _money(raw)


def _string(raw: Any) -> str:
    if isinstance(raw, bool) or not isinstance(raw, str | int | float):
        raise AttributeValueError("text")
    text = str(raw).strip()
    if not text:
        raise AttributeValueError("text must not be empty (use null to clear)")
    if len(text) > MAX_STRING:
        raise AttributeValueError(f"at most {MAX_STRING} characters")
    try:
        return _clean_text(text)
    except PydanticCustomError as exc:
        raise AttributeValueError(exc.message()) from None


def _reference(raw: Any) -> str:
    try:
        return str(uuid.UUID(str(raw).strip()))
    except (ValueError, AttributeError):
        raise AttributeValueError("the id of a record") from None


def validate_value(definition: AttributeDefinition, raw: Any) -> Any:
    """The stored form of ``raw`` for this attribute; AttributeValueError when it does not fit.

    Lenient with what people type (``1 234,50``, ``да``, ``31.12.2024``, ``100 RUB``) and strict
    about what it keeps.
    """
    kind = definition.type
    if kind is AttributeType.STRING:
        return _string(raw)
    if kind is AttributeType.NUMBER:
        return _number(raw)
    if kind is AttributeType.DATE:
        return _date(raw)
    if kind is AttributeType.BOOL:
        return _bool(raw)
    if kind is AttributeType.ENUM:
        return _option(definition, raw)
    if kind is AttributeType.MULTI_ENUM:
        return _options(definition, raw)
    if kind is AttributeType.MONEY:
        return _money(raw)
    return _reference(raw)


class AttributeErrors(ValueError):
    """Values that do not fit: pydantic-shaped errors located at ``attributes.<key>``."""

    def __init__(self, errors: list[dict[str, Any]]) -> None:
        super().__init__("custom attribute values are not valid")
        self.errors = errors


def _error(key: str, message: str, kind: str = "attribute") -> dict[str, Any]:
    return {"loc": ("attributes", key), "msg": message, "type": kind}


def apply_attribute_patch(
    definitions: Mapping[str, AttributeDefinition],
    current: Mapping[str, Any],
    patch: Mapping[str, Any] | None,
    *,
    creating: bool,
) -> dict[str, Any]:
    """A record's attribute values after a merge patch (``null`` clears a value).

    Unknown keys and values that do not fit are refused; archived attributes keep their values
    but take no new ones; a required attribute must be given when a record is created and may
    not be cleared later. Values not in the patch are kept as they are (also those of archived
    attributes). Raises AttributeErrors listing every problem.
    """
    errors: list[dict[str, Any]] = []
    result = dict(current)
    if patch is None:  # the whole object cleared
        patch = dict.fromkeys(current)
    if not isinstance(patch, Mapping):
        raise AttributeErrors([{"loc": ("attributes",), "msg": "an object", "type": "type"}])
    for key, raw in patch.items():
        definition = definitions.get(key)
        if definition is None:
            errors.append(_error(key, "no such attribute", "unknown_attribute"))
            continue
        if raw is None:
            if definition.required and not definition.archived:
                errors.append(_error(key, "a required attribute cannot be cleared", "required"))
            result.pop(key, None)
            continue
        if definition.archived:
            errors.append(_error(key, "the attribute is archived", "archived"))
            continue
        try:
            result[key] = validate_value(definition, raw)
        except AttributeValueError as exc:
            errors.append(_error(key, str(exc)))
    if creating:
        for key, definition in definitions.items():
            reported = any(error["loc"] == ("attributes", key) for error in errors)
            needed = definition.required and not definition.archived
            if needed and key not in result and not reported:
                errors.append(_error(key, "a required attribute", "missing"))
    if errors:
        raise AttributeErrors(errors)
    return dict(sorted(result.items()))


def references(
    definitions: Mapping[str, AttributeDefinition], values: Mapping[str, Any]
) -> list[tuple[str, EntityKind, uuid.UUID]]:
    """``(key, kind, id)`` of every reference among ``values`` (for the caller to check)."""
    found = []
    for key, value in values.items():
        definition = definitions.get(key)
        if definition is not None and definition.reference_kind is not None:
            found.append((key, definition.reference_kind, uuid.UUID(str(value))))
    return found


def attribute_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """``{"attributes.<key>": {"old", "new"}}`` for every value that differs."""
    return {
        f"attributes.{key}": {"old": old.get(key), "new": new.get(key)}
        for key in sorted({*old, *new})
        if old.get(key) != new.get(key)
    }


# --- conditions ------------------------------------------------------------------------------

OPERATORS: dict[AttributeType, frozenset[str]] = {
    AttributeType.STRING: frozenset({"eq", "in", "contains", "exists"}),
    AttributeType.NUMBER: frozenset({"eq", "in", "gte", "lte", "exists"}),
    AttributeType.DATE: frozenset({"eq", "in", "gte", "lte", "exists"}),
    AttributeType.BOOL: frozenset({"eq", "exists"}),
    AttributeType.ENUM: frozenset({"eq", "in", "exists"}),
    AttributeType.MULTI_ENUM: frozenset({"contains", "in", "exists"}),
    AttributeType.MONEY: frozenset({"gte", "lte", "eq", "exists"}),
    AttributeType.REFERENCE: frozenset({"eq", "in", "exists"}),
}
"""Which operators each type takes. For multi-enums ``contains`` is "has this option" and ``in``
"has any of these"; for strings ``contains`` is a case-insensitive substring; for money the
bounds compare amounts (and currencies, when given with one)."""


def normalized_condition(
    definition: AttributeDefinition, condition: Mapping[str, Any]
) -> dict[str, Any]:
    """The operators of a condition with their values in stored form; AttributeValueError when
    an operator does not apply to the type or a value does not fit."""
    allowed = OPERATORS[definition.type]
    unknown = set(condition) - allowed
    if unknown:
        raise AttributeValueError(
            f"{', '.join(sorted(unknown))} does not apply to a {definition.type.value} attribute;"
            f" use {', '.join(sorted(allowed))}"
        )
    if not condition:
        raise AttributeValueError("give an operator")
    result: dict[str, Any] = {}
    for operator, raw in condition.items():
        if operator == "exists":
            result[operator] = bool(raw)
        elif operator == "in":
            item = (
                AttributeDefinition.model_validate(
                    {**definition.model_dump(), "type": AttributeType.ENUM}
                )
                if definition.type is AttributeType.MULTI_ENUM
                else definition
            )
            result[operator] = [validate_value(item, value) for value in raw]
        elif operator == "contains" and definition.type is AttributeType.MULTI_ENUM:
            result[operator] = _option(definition, raw)
        elif operator == "contains":
            result[operator] = _string(raw)
        elif definition.type is AttributeType.MONEY:
            result[operator] = _money_bound(raw)
        else:
            result[operator] = validate_value(definition, raw)
    return result
