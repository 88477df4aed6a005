"""Value types the services share (no I/O): clean text, directions, money.

Text is NFC-normalized and refuses control characters (PostgreSQL cannot store NUL), as the
directory's text does; money is a Decimal with an ISO 4217 currency, never a float.
"""

from __future__ import annotations

import json
import unicodedata
from datetime import time
from decimal import Decimal
from typing import Annotated, Any

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError

MAX_LIST = 50
"""The most items a list field (directions, tags, contact persons) may hold."""


def clean_text(value: str) -> str:
    """NFC text without control or unassigned characters (tabs and newlines allowed)."""
    value = unicodedata.normalize("NFC", value)
    for char in value:
        if unicodedata.category(char) in ("Cc", "Cs", "Co", "Cn") and char not in "\n\t":
            raise PydanticCustomError(
                "control_character", "text must not contain control or unassigned characters"
            )
    return value


def _one_line(value: str) -> str:
    if "\n" in value or "\t" in value:
        raise PydanticCustomError("control_character", "text must be one line")
    return value


Name = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=200),
    AfterValidator(clean_text),
    AfterValidator(_one_line),
]
Title = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=500),
    AfterValidator(clean_text),
    AfterValidator(_one_line),
]
Note = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=2000),
    AfterValidator(clean_text),
]
Label = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100),
    AfterValidator(clean_text),
    AfterValidator(_one_line),
]
Direction = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,63}$")]

ClockTime = Annotated[
    time,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^([01]\d|2[0-3]):[0-5]\d(:[0-5]\d)?$",
            "examples": ["09:00"],
        }
    ),
]
"""A local wall-clock time, "09:00" or "09:00:00", in a time zone named beside it (JSON
Schema's ``format: time`` wants an offset, which such a time has not)."""


def _sorted_set(values: list[str]) -> list[str]:
    return sorted(set(values))


def _unique_labels(values: list[str]) -> list[str]:
    seen: set[str] = set()
    kept = []
    for value in values:
        if value.casefold() not in seen:
            seen.add(value.casefold())
            kept.append(value)
    return kept


Directions = Annotated[
    list[Direction], Field(min_length=1, max_length=MAX_LIST), AfterValidator(_sorted_set)
]
Labels = Annotated[list[Label], Field(max_length=MAX_LIST), AfterValidator(_unique_labels)]

ISO_4217 = frozenset(
    """
    AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF
    BMD BND BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLP CNY COP CRC
    CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
    GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD
    JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL
    LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD
    NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD
    RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP
    SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD UYU UZS VES
    VND VUV WST XAF XCD XCG XOF XPF YER ZAR ZMW ZWG
    """.split()  # noqa: SIM905
)
"""Active ISO 4217 currency codes (funds, metals and test codes excluded)."""


def _currency(value: str) -> str:
    if value not in ISO_4217:
        raise PydanticCustomError("currency", "not an ISO 4217 currency code")
    return value


Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$"), AfterValidator(_currency)]
Amount = Annotated[Decimal, Field(ge=0, max_digits=18, decimal_places=2, allow_inf_nan=False)]
"""A money amount: up to 16 digits before the point and 2 after, never negative."""

MAX_JSON_DEPTH = 5
MAX_JSON_BYTES = 16_384


def _depth(value: Any, level: int = 0) -> int:
    if isinstance(value, dict):
        return max((_depth(item, level + 1) for item in value.values()), default=level + 1)
    if isinstance(value, list):
        return max((_depth(item, level + 1) for item in value), default=level + 1)
    return level


def _clean_json(value: Any) -> None:
    if isinstance(value, str):
        clean_text(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            clean_text(key)
            _clean_json(item)
    elif isinstance(value, list):
        for item in value:
            _clean_json(item)


def _bounded_json(value: dict[str, Any]) -> dict[str, Any]:
    if _depth(value) > MAX_JSON_DEPTH:
        raise PydanticCustomError("json_depth", f"nested deeper than {MAX_JSON_DEPTH} levels")
    if len(json.dumps(value, ensure_ascii=False)) > MAX_JSON_BYTES:
        raise PydanticCustomError("json_size", f"longer than {MAX_JSON_BYTES} characters")
    _clean_json(value)
    return value


CustomFields = Annotated[dict[str, Any], AfterValidator(_bounded_json)]
"""Custom field values by key: JSON of bounded depth and size (typed by attributes later)."""
