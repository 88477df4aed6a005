"""Register entry rules without infrastructure."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from clientele_directory.register.rules import RegisterBasis, RegisterEntryDraft
from pydantic import ValidationError

WHY = {"reason": "Судебные споры", "decided_by": "Служба безопасности, протокол 7"}


@pytest.mark.parametrize(
    ("target", "basis"),
    [
        ({"organization_id": str(uuid.uuid4())}, RegisterBasis.ORGANIZATION),
        ({"person_id": str(uuid.uuid4())}, RegisterBasis.PERSON),
        ({"inn": "7707083893"}, RegisterBasis.INN),
        ({"email_domain": "@Spam.Example"}, RegisterBasis.EMAIL_DOMAIN),
    ],
)
def test_an_entry_names_one_target(target: dict[str, Any], basis: RegisterBasis) -> None:
    entry = RegisterEntryDraft.model_validate(WHY | target)
    assert entry.basis == basis
    if basis == RegisterBasis.EMAIL_DOMAIN:
        assert entry.email_domain == "spam.example"


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({}, "exactly one of"),
        ({"inn": "7707083893", "email_domain": "x.ru"}, "exactly one of"),
        ({"inn": "7707083894"}, "checksum"),
        ({"email_domain": "not a domain"}, "domain"),
        ({"email_domain": "x.ru", "reason": ""}, "at least 1 character"),
        ({"email_domain": "x.ru", "decided_by": None}, "valid string"),
    ],
)
def test_bad_entries_are_refused(fields: dict[str, Any], message: str) -> None:
    with pytest.raises(ValidationError) as exc:
        RegisterEntryDraft.model_validate(WHY | fields)
    assert message in str(exc.value)
