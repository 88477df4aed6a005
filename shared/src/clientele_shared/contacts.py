"""Phone numbers and e-mail addresses as people write them, normalized and checked (no I/O):
the directory's rules, shared with the services that take contacts in (the pipeline's leads)."""

from __future__ import annotations

import re

import phonenumbers
from email_validator import SPECIAL_USE_DOMAIN_NAMES, EmailNotValidError, validate_email
from email_validator.rfc_constants import CASE_INSENSITIVE_MAILBOX_NAMES

DEFAULT_PHONE_REGION = "RU"
"""Numbers written without a country code are read as Russian numbers."""

_PLAIN_RU_PHONE = re.compile(r"(?:\+7[ ()-]{0,2}[1-9]|8[ ()-]{0,2}[2-9])(?:[ ()-]{0,2}[0-9]){9}")
"""A Russian number in its common written forms (``+7`` or ``8``, ten digits, the first not 0,
nor 1 after ``8``: ``8 10`` dials abroad; spaces, brackets and hyphens between them, no
extension): read without phonenumbers' parser."""


def normalize_phone(raw: str, region: str = DEFAULT_PHONE_REGION) -> tuple[str, str | None]:
    """``(E.164 number, extension)`` of a phone number as people write it; ValueError if invalid.

    A Russian number in its common form skips phonenumbers' parser (a tenth of an import's
    reading), never its validity check; a test compares both ways on generated numbers."""
    if len(raw) > 64:
        raise ValueError("a phone number has at most 64 characters")
    if region == "RU" and _PLAIN_RU_PHONE.fullmatch(raw):
        national = re.sub(r"[^0-9]", "", raw)[1:]
        number = phonenumbers.PhoneNumber(country_code=7, national_number=int(national))
        if not phonenumbers.is_valid_number(number):
            raise ValueError("not a valid phone number")
        return f"+7{national}", None
    return parsed_phone(raw, region)


def parsed_phone(raw: str, region: str = DEFAULT_PHONE_REGION) -> tuple[str, str | None]:
    """:func:`normalize_phone` by phonenumbers' parser alone."""
    try:
        parsed = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(f"not a phone number: {exc}") from None
    if not phonenumbers.is_valid_number(parsed):
        raise ValueError("not a valid phone number")
    number = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return number, parsed.extension or None


_PLAIN_EMAIL = re.compile(
    r"(?=[^@]{1,64}@)[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*"
    r"@(?=.{4,253}$)(?!.*--)(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+"
    r"(?P<tld>[A-Za-z]{2,63})"
)
"""An address in the common ASCII form whose normalization is lower-casing the domain (and an
RFC 2142 role mailbox):
dot-atoms of letters, digits and ``_%+-``, labels of letters, digits and inner hyphens (none
doubled: no IDNA ``xn--`` label), a TLD of letters. Anything else goes to email-validator."""
_SPECIAL_USE_TLDS = frozenset(SPECIAL_USE_DOMAIN_NAMES)
_CASE_INSENSITIVE_MAILBOXES = frozenset(CASE_INSENSITIVE_MAILBOX_NAMES)
"""RFC 2142's role mailboxes (``info``, ``sales``, ``postmaster``...): email-validator lower-cases
them."""


def normalize_email(value: str) -> str:
    """The normalized form of an e-mail address (domain lower-cased, IDNA); ValueError if bad.

    The common plain form is checked by one expression (email-validator takes a tenth of an
    import's reading); the rest by email-validator, which decides alike for the plain form (a
    test compares the two on generated addresses)."""
    value = value.strip()
    plain = _PLAIN_EMAIL.fullmatch(value)
    if plain is not None and plain["tld"].lower() not in _SPECIAL_USE_TLDS and len(value) <= 254:
        local, _, domain = value.rpartition("@")
        if local.lower() in _CASE_INSENSITIVE_MAILBOXES:  # info@, sales@...: as email-validator
            local = local.lower()
        return f"{local}@{domain.lower()}"
    return validated_email(value)


def validated_email(value: str) -> str:
    """:func:`normalize_email` by email-validator alone."""
    try:
        result = validate_email(value, check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValueError(str(exc)) from None
    local, _, domain = result.normalized.rpartition("@")
    return f"{local}@{domain.lower()}"
