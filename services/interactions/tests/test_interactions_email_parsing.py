"""Unit tests: reading .msg and .eml files, telling who is who."""

from __future__ import annotations

from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path

import pytest
from clientele_interactions.capture.parsing import (
    Address,
    CapturedMessage,
    NotMail,
    ParseLimits,
    UnreadableMessage,
    parse_message,
    valid_address,
)
from clientele_interactions.capture.rules import match_addresses
from interactions_testkit import sample_msg_builder

SAMPLE_MSG = Path(__file__).parent / "data" / "sample.msg"


def test_the_sample_is_what_its_script_writes() -> None:
    assert sample_msg_builder().build() == SAMPLE_MSG.read_bytes()


def test_a_msg_without_a_date_gets_its_creation_time() -> None:
    builder = sample_msg_builder()
    message = parse_message("undated.msg", builder.build(dated=False))
    assert message.sent_at == builder.CREATED


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


# --- real Outlook files (Apache POI's test data, see corpus/outlook/NOTICE.md) ----------------

CORPUS = Path(__file__).parent / "corpus" / "outlook"


def _outlook(name: str) -> CapturedMessage:
    return parse_message(name, (CORPUS / name).read_bytes())


def test_an_ansi_message_is_read_in_its_code_page() -> None:
    message = _outlook("ASCII_CP1251_LCID1049.msg")  # PR_INTERNET_CPID 1251, LCID 1049
    assert message.subject == "Subject автоматически Subject"
    assert message.body.strip() == "Body автоматически Body"
    chinese = _outlook("chinese-traditional.msg")  # code page 950
    assert chinese.subject == "Alfresco MSG format testing ( MSG 格式測試 )"


def test_the_sender_of_a_sent_item_comes_from_the_sender_properties() -> None:
    message = _outlook("example_sent_regular.msg")
    assert message.sender == Address("mike.farman@alfresco.com", "Mike Farman")
    assert message.addresses()[0] == "mike.farman@alfresco.com"


def test_a_display_name_without_an_address_is_no_address() -> None:
    message = _outlook("chinese-traditional.msg")  # sender "Tests Chang@FT (...)", an EX one
    assert message.sender is None
    assert message.addresses() == ["tests.chang@fengttt.com"]  # the recipient's SMTP proxy
    assert valid_address("tests chang@ft") is None
    assert valid_address("/O=FT GROUP/OU=FT/CN=RECIPIENTS/CN=LYDIACHANG") is None
    assert valid_address("Maria.Ivanova@Client.Example") == "maria.ivanova@client.example"


def test_attached_messages_and_untyped_files_are_kept() -> None:
    message = _outlook("attachment_msg_pdf.msg")
    assert [(a.filename, a.content_type, a.refused) for a in message.attachments] == [
        ("Test Attachment.msg", "application/vnd.ms-outlook", None),
        ("smbprn.00009008.KdcPjl.pdf", "application/octet-stream", None),
    ]
    inner = parse_message("inner.msg", message.attachments[0].data)
    assert inner.format == "msg"
    nested = _outlook("58214_with_attachment.msg").attachments
    assert [(a.filename, a.content_type) for a in nested] == [
        ("Test mail attachment.msg", "application/vnd.ms-outlook")
    ]


def test_an_appointment_is_a_meeting_at_its_start() -> None:
    message = _outlook("msgClassAppointment.msg")
    assert message.kind == "meeting"
    assert message.sent_at == datetime(2017, 2, 28, 18, 30, tzinfo=UTC)
    assert _outlook("example_sent_regular.msg").kind == "email"


def test_a_contact_is_not_mail() -> None:
    with pytest.raises(NotMail, match="contact"):
        _outlook("msgClassContact.msg")


def test_nul_characters_are_dropped() -> None:
    message = _outlook("simple_test_msg.msg")
    assert message.subject == "test message"
    assert "\x00" not in message.body
    assert message.addresses() == ["travis@overwrittenstack.com"]
    assert all("\x00" not in (a.name or "") for a in message.to)


def test_mail_without_message_id_is_known_by_its_content() -> None:
    message = _outlook("example_sent_regular.msg")
    assert message.message_id is None
    again = _outlook("example_sent_regular.msg")
    assert message.dedup_key() == again.dedup_key()
    assert message.dedup_key().startswith("sha256:")
    again.body += "."
    assert message.dedup_key() != again.dedup_key()
    assert _outlook("attachment_msg_pdf.msg").dedup_key().startswith("<3975CB07")


def test_an_html_only_mail_is_kept_as_text() -> None:
    source = EmailMessage()
    source["From"] = "a@client.example"
    source["To"] = "b@ourco.example"
    source.set_content(
        "<html><head><style>p{}</style><script>alert('x')</script></head>"
        "<body><p>Dear&nbsp;Anna,</p><p>the <b>offer</b> &lt;attached&gt;</p></body></html>",
        subtype="html",
    )
    message = parse_message("x.eml", source.as_bytes())
    assert message.body == "Dear Anna,\n\nthe offer <attached>"
    assert "alert" not in message.body


def test_an_html_only_outlook_message_is_kept_as_text() -> None:
    html = "<html><head><script>alert('x')</script></head><body><p>Dear Anna,</p></body></html>"
    message = parse_message("x.msg", sample_msg_builder().build(html=html))
    assert message.body == "Dear Anna,"


def _nested(depth: int) -> bytes:
    lines = ["From: a@client.example", "To: b@ourco.example", "MIME-Version: 1.0"]
    for level in range(depth):
        lines += [f'Content-Type: multipart/mixed; boundary="b{level}"', "", f"--b{level}"]
    lines += ["Content-Type: text/plain", "", "deep"]
    lines += [f"--b{level}--" for level in reversed(range(depth))]
    return "\r\n".join(lines).encode()


def _wide(parts: int) -> bytes:
    lines = ["From: a@client.example", "To: b@ourco.example", "MIME-Version: 1.0"]
    lines += ['Content-Type: multipart/mixed; boundary="w"', ""]
    for index in range(parts):
        lines += ["--w", "Content-Type: text/plain", "", f"part {index}"]
    return "\r\n".join([*lines, "--w--", ""]).encode()


def test_files_beyond_the_bounds_are_unreadable() -> None:
    with pytest.raises(UnreadableMessage, match="nested"):
        parse_message("deep.eml", _nested(1_200))
    assert parse_message("deep.eml", _nested(10)).body.strip() == "deep"
    with pytest.raises(UnreadableMessage, match="parts"):
        parse_message("wide.eml", _wide(50), ParseLimits(max_parts=20))
    crowded = EmailMessage()
    crowded["From"] = "a@client.example"
    crowded["To"] = ", ".join(f"p{index}@client.example" for index in range(30))
    with pytest.raises(UnreadableMessage, match="recipients"):
        parse_message("crowd.eml", crowded.as_bytes(), ParseLimits(max_recipients=20))
