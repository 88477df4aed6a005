"""Search rules without infrastructure: query terms, phones, LIKE escaping, cursors."""

from __future__ import annotations

import pytest
from clientele_directory.search.rules import (
    Cursor,
    CursorError,
    OrganizationFilter,
    decode_cursor,
    encode_cursor,
    fingerprint,
    fold,
    like_pattern,
    phone_digits,
    search_terms,
)
from pydantic import ValidationError


def test_terms_are_folded_words() -> None:
    assert fold("ЁЛКА Ёж") == "елка еж"
    assert search_terms("  ООО  «Ёлка»  ооо ") == ["ооо", "«елка»"]


@pytest.mark.parametrize(
    ("written", "digits"),
    [
        ("8 (495) 500-55-50", "74955005550"),
        ("+7 495 500 55 50", "74955005550"),
        ("500-55-50", "5005550"),
        ("+8 800 000 00 00", "88000000000"),
        ("1234", None),
        ("ромашка", None),
    ],
)
def test_phones_are_searched_by_digits(written: str, digits: str | None) -> None:
    assert phone_digits(written) == digits


def test_a_phone_with_spaces_is_one_term() -> None:
    assert search_terms("8 (495) 500-55-50") == ["74955005550"]
    assert search_terms("Ромашка 500-55-50") == ["ромашка", "5005550"]


def test_control_characters_are_refused() -> None:
    with pytest.raises(ValueError, match="control"):
        search_terms("abc\x00")


def test_like_specials_are_escaped() -> None:
    assert like_pattern("100%_a\\b") == "%100\\%\\_a\\\\b%"


def test_a_cursor_round_trips_and_is_opaque() -> None:
    bound = fingerprint('{"q":"x"}', "name")
    token = encode_cursor(
        Cursor("name", ("Ёлка «1»", "0b7c6c4e-8f0e-4a53-9a8a-1d2b8f1e0a11"), bound)
    )
    assert "Ёлка" not in token
    assert "=" not in token
    assert decode_cursor(token, sort="name", fingerprint=bound, size=2) == (
        "Ёлка «1»",
        "0b7c6c4e-8f0e-4a53-9a8a-1d2b8f1e0a11",
    )


def test_a_cursor_serves_only_its_own_query() -> None:
    bound = fingerprint('{"q":"x"}', "name")
    token = encode_cursor(Cursor("name", ("a", "b"), bound))
    with pytest.raises(CursorError, match="another query"):
        decode_cursor(token, sort="name", fingerprint=fingerprint('{"q":"y"}', "name"), size=2)
    with pytest.raises(CursorError, match="another query"):
        decode_cursor(token, sort="-name", fingerprint=bound, size=2)


@pytest.mark.parametrize(
    "token", ["", "!!!", "e30", "x" * 3000, encode_cursor(Cursor("name", (1,), "f"))]
)
def test_broken_cursors_are_refused(token: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(token, sort="name", fingerprint="f", size=2)


def test_a_filter_is_canonical_and_strict() -> None:
    one = OrganizationFilter.model_validate({"status": ["client"], "q": "x"})
    two = OrganizationFilter.model_validate({"q": "x", "status": ["client"], "tags": None})
    assert one.canonical() == two.canonical()
    with pytest.raises(ValidationError):
        OrganizationFilter.model_validate({"colour": "red"})
    with pytest.raises(ValidationError):
        OrganizationFilter.model_validate({"status": ["lost"]})
