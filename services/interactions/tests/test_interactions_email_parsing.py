"""Unit tests: reading .msg and .eml files, telling who is who."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from clientele_interactions.domain.email_capture import (
    UnreadableMessage,
    match_addresses,
    parse_message,
)

SAMPLE_MSG = Path(__file__).parent / "data" / "sample.msg"


def test_reads_the_sample_outlook_message() -> None:
    message = parse_message("offer.msg", SAMPLE_MSG.read_bytes())
    assert message.format == "msg"
    assert message.subject == "Коммерческое предложение"
    assert message.sender is not None
    assert message.sender.address == "m.ivanova@client.example"
    assert [a.address for a in message.to] == ["sales@ourco.example"]
    assert [a.address for a in message.cc] == ["stranger@unknown.example"]
    assert message.sent_at == datetime(2026, 3, 2, 7, 15, tzinfo=UTC)
    assert message.message_id == "<offer-2026-03@client.example>"
    assert [(a.filename, a.content_type) for a in message.attachments] == [
        ("offer.pdf", "application/pdf")
    ]


def test_reads_an_eml_made_with_the_standard_library() -> None:
    source = EmailMessage()
    source["From"] = "=?utf-8?b?0JzQsNGA0LjRjw==?= <Maria@Client.Example>"
    source["To"] = "a@ourco.example, B <b@ourco.example>"
    source["Subject"] = "Привет"
    source["Date"] = "Mon, 02 Mar 2026 10:15:00 +0300"
    source.set_content("Текст письма")
    source.add_attachment(b"%PDF-1.4", maintype="application", subtype="pdf", filename="a.pdf")
    message = parse_message("x.eml", source.as_bytes())
    assert message.sender is not None
    assert message.sender.address == "maria@client.example"
    assert message.sender.name == "Мария"
    assert message.addresses() == ["maria@client.example", "a@ourco.example", "b@ourco.example"]
    assert message.sent_at == datetime(2026, 3, 2, 7, 15, tzinfo=UTC)
    assert message.body.strip() == "Текст письма"
    assert message.attachments[0].data == b"%PDF-1.4"


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("a.eml", b""),
        ("a.eml", b"hello"),
        ("a.msg", b"From: x@y.z\r\n\r\nhi"),
        ("a.msg", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\0" * 600),
    ],
    ids=["empty", "not-mail", "msg-without-ole", "broken-ole"],
)
def test_unreadable_files(name: str, data: bytes) -> None:
    with pytest.raises(UnreadableMessage):
        parse_message(name, data)


def test_matching_prefers_persons_at_the_client_and_knows_our_domains() -> None:
    message = parse_message("offer.msg", SAMPLE_MSG.read_bytes())
    known = {"m.ivanova@client.example": ["old-maria", "maria"]}
    matching = match_addresses(message, known, ["ourco.example"], preferred={"maria"})
    assert matching.matched == {"m.ivanova@client.example": "maria"}
    assert matching.unknown == ["stranger@unknown.example"]
    assert matching.direction == "in"
    assert match_addresses(message, {}, ["client.example"]).direction == "out"
    everyone = match_addresses(message, {}, [])
    assert everyone.unknown == message.addresses()


def test_employees_are_ours() -> None:
    message = parse_message("offer.msg", SAMPLE_MSG.read_bytes())
    staff = {"m.ivanova@client.example": "employee-1"}
    matching = match_addresses(
        message, {"m.ivanova@client.example": ["p"]}, [], employees_by_address=staff
    )
    assert matching.direction == "out"
    assert matching.employee_id == "employee-1"
    assert matching.matched == {}
    assert "m.ivanova@client.example" not in matching.unknown
