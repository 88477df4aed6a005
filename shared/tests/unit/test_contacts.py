"""The fast paths of e-mail and phone normalization decide exactly as the libraries they skip
(email-validator's checks, phonenumbers' parser), on inputs generated around their edges."""

from __future__ import annotations

import random
import string

from clientele_shared.contacts import (
    _PLAIN_EMAIL,
    _PLAIN_RU_PHONE,
    normalize_email,
    normalize_phone,
    parsed_phone,
    validated_email,
)


def _generated_addresses(count: int, seed: int = 9457) -> list[str]:
    """Addresses near the plain form's edges: odd characters, dots and hyphens at label ends,
    doubled, IDNA labels, special-use and numeric TLDs, labels and locals at their length
    limits, spaces, Cyrillic."""
    rng = random.Random(seed)
    local_chars = string.ascii_letters + string.digits + "._%+-!#$&'*/=?^`{|}~ \"(),:;<>[]\\й"
    label_chars = string.ascii_letters + string.digits + "-_ .й"
    tlds = [
        "ru",
        "com",
        "RU",
        "рф",
        "xn--p1ai",
        "local",
        "test",
        "onion",
        "arpa",
        "invalid",
        "localhost",
        "c",
        "1",
        "r1",
        "museum",
        "Онлайн",
        "example",
        "a" * 63,
        "a" * 64,
    ]

    def label() -> str:
        if rng.random() < 0.05:
            return rng.choice(["xn--80ak6aa92e", "xn--bad", "ab--cd", "-a", "a-", "a" * 63])
        return "".join(rng.choice(label_chars) for _ in range(rng.choice([1, 2, 5, 12, 63, 64])))

    addresses = []
    for _ in range(count):
        local = "".join(rng.choice(local_chars) for _ in range(rng.choice([1, 3, 8, 64, 65])))
        if rng.random() < 0.5:  # mostly plain: the interesting edge is near the fast path
            local = "".join(c for c in local if c in string.ascii_letters + string.digits + "._%+-")
        domain = ".".join(label() for _ in range(rng.choice([0, 1, 1, 2, 3])))
        domain = f"{domain}.{rng.choice(tlds)}" if domain else rng.choice(tlds)
        if rng.random() < 0.02:
            domain = f"{'b' * 63}.{'c' * 63}.{'d' * 63}.{'e' * 58}.ru"
        addresses.append(f"{local}@{domain}")
    return addresses


def test_the_plain_form_is_normalized_as_email_validator_does() -> None:
    """The regular-expression path of ``normalize_email`` decides exactly as email-validator:
    the same address or an error, for addresses generated around its edges."""
    taken = 0
    roles = ["Info", "SALES", "PostMaster", "support", "Www", "Infos", "Sales1", "abuse.team"]
    addresses = [f"{r}@Romashka.example" for r in roles] + _generated_addresses(20_000)
    for address in addresses:
        try:
            expected: str | None = validated_email(address.strip())
        except ValueError:
            expected = None
        try:
            got: str | None = normalize_email(address)
        except ValueError:
            got = None
        assert got == expected, address
        taken += _PLAIN_EMAIL.fullmatch(address.strip()) is not None
    assert taken > 2_000  # the plain path was exercised, not only the fallback


def _generated_phones(count: int, seed: int = 3166) -> list[str]:
    """Numbers near the common Russian form's edges: +7, 8, 7 and none before them, 9 to 12
    digits, leading zeros, any of spaces, brackets, hyphens, dots and slashes between digits,
    extensions, letters."""
    rng = random.Random(seed)
    separators = ["", "", "", " ", "-", "(", ")", " (", ") ", "  ", "--", ".", "/", "   "]
    phones = []
    for _ in range(count):
        common = rng.random() < 0.5  # half in the common form's shape, half around it
        prefix = rng.choice(
            ["+7", "8"] if common else ["+7", "8", "7", "", "+8", "+ 7", "+77", "007"]
        )
        digits = [
            rng.choice("0123456789") for _ in range(10 if common else rng.choice([9, 10, 11]))
        ]
        if rng.random() < 0.6:  # mostly valid-looking: mobile or Moscow codes first
            digits[:3] = list(rng.choice(["916", "495", "800", "812", "343", "700", "717"]))
        between = separators[:9] if common else separators
        text = prefix + "".join(rng.choice(between) + digit for digit in digits)
        if rng.random() < 0.05:
            text += rng.choice([" доб. 12", " ext 7", "#1", " x"])
        phones.append(text)
    return phones


def test_the_common_russian_form_is_read_as_phonenumbers_reads_it() -> None:
    """The fast path of ``normalize_phone`` decides exactly as phonenumbers' parser: the same
    number and extension, or an error."""
    taken = 0
    # "8 10" dials abroad from Russia: a Cook Islands number, not a Russian one
    assert (
        normalize_phone("8 10 682 21234") == parsed_phone("8 10 682 21234") == ("+68221234", None)
    )
    for raw in _generated_phones(20_000):
        try:
            expected: tuple[str, str | None] | None = parsed_phone(raw)
        except ValueError:
            expected = None
        try:
            got: tuple[str, str | None] | None = normalize_phone(raw)
        except ValueError:
            got = None
        assert got == expected, raw
        taken += _PLAIN_RU_PHONE.fullmatch(raw) is not None
    assert taken > 5_000  # the fast path was exercised, not only the parser
