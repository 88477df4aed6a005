"""Writes ``sample.msg``: a small Outlook message (MS-OXMSG in an OLE compound file) made with
extract-msg's own ``OleWriter``, so it carries no third-party content or licence.

No public-domain .msg sample ships in a PyPI package we could use (extract-msg's wheel and sdist
carry none), so the sample is generated once with this script and committed; the test reads the
file as Outlook would save it. Run:
``uv run python services/interactions/tests/data/make_sample_msg.py``.

The message: from Maria Ivanova <m.ivanova@client.example> to sales@ourco.example, Cc
stranger@unknown.example, subject "Коммерческое предложение", sent 2026-03-02 07:15 UTC, with
one PDF attachment ``offer.pdf``.
"""

from __future__ import annotations

import struct
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from extract_msg.ole_writer import OleWriter

SENT = datetime(2026, 3, 2, 7, 15, tzinfo=UTC)
CREATED = datetime(2026, 3, 1, 16, 40, tzinfo=UTC)
PDF = b"%PDF-1.4\n% sample offer\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"
PT_LONG, PT_SYSTIME, PT_UNICODE, PT_BINARY = 0x0003, 0x0040, 0x001F, 0x0102


def _utf16(text: str) -> bytes:
    return text.encode("utf-16-le")


def _fixed(prop_id: int, prop_type: int, value: int) -> bytes:
    return struct.pack("<IIQ", (prop_id << 16) | prop_type, 0x6, value)


def _variable(prop_id: int, prop_type: int, size: int) -> bytes:
    return struct.pack("<IIII", (prop_id << 16) | prop_type, 0x6, size, 0)


def _filetime(moment: datetime) -> int:
    return int((moment.timestamp() + 11_644_473_600) * 10_000_000)


def _strings(writer: OleWriter, base: str, values: dict[int, str]) -> bytes:
    entries = b""
    for prop_id, text in values.items():
        data = _utf16(text)
        writer.addEntry(f"{base}__substg1.0_{prop_id:04X}{PT_UNICODE:04X}", data)
        entries += _variable(prop_id, PT_UNICODE, len(data) + 2)
    return entries


def build(*, dated: bool = True, crowd: int = 0, html: str | None = None) -> bytes:
    """The sample; ``dated=False``: without submit and delivery times (only when it was
    created, ``CREATED``); ``crowd``: that many more recipients (a mass mailing); ``html``:
    this HTML body (PR_HTML) instead of the plain text one."""
    writer = OleWriter()
    body = {} if html else {0x1000: "Добрый день!\nНаправляем наше коммерческое предложение.\n"}
    properties = _strings(
        writer,
        "",
        {
            0x001A: "IPM.Note",
            0x0037: "Коммерческое предложение",
            **body,
            0x0C1A: "Maria Ivanova",
            0x0C1F: "m.ivanova@client.example",
            0x0C1E: "SMTP",
            0x5D01: "m.ivanova@client.example",
            0x0E04: "Sales",
            0x0E03: "stranger@unknown.example",
            0x1035: "<offer-2026-03@client.example>",
        },
    )
    if html:
        data = html.encode()
        writer.addEntry(f"__substg1.0_{0x1013:04X}{PT_BINARY:04X}", data)
        properties += _variable(0x1013, PT_BINARY, len(data))
    properties += _fixed(0x0E07, PT_LONG, 0x1)  # message flags: read, sent
    if dated:
        properties += _fixed(0x0039, PT_SYSTIME, _filetime(SENT))  # client submit time
        properties += _fixed(0x0E06, PT_SYSTIME, _filetime(SENT))  # delivery time
    else:
        properties += _fixed(0x3007, PT_SYSTIME, _filetime(CREATED))  # creation time
    recipients = [("Sales", "sales@ourco.example", 1), ("stranger", "stranger@unknown.example", 2)]
    recipients += [(f"Person {i}", f"person{i}@crowd.example", 1) for i in range(crowd)]
    count = len(recipients)
    header = struct.pack("<8sIIII8s", b"\0" * 8, count, 1, count, 1, b"\0" * 8)
    writer.addEntry("__properties_version1.0", header + properties)

    for index, (name, address, kind) in enumerate(recipients):
        base = f"__recip_version1.0_#{index:08X}"
        writer.addEntry(base, storage=True)
        entries = _strings(
            writer, base + "/", {0x3001: name, 0x3002: "SMTP", 0x3003: address, 0x39FE: address}
        )
        entries += _fixed(0x0C15, PT_LONG, kind) + _fixed(0x3000, PT_LONG, index)
        writer.addEntry(f"{base}/__properties_version1.0", b"\0" * 8 + entries)

    base = "__attach_version1.0_#00000000"
    writer.addEntry(base, storage=True)
    writer.addEntry(f"{base}/__substg1.0_{0x3701:04X}{PT_BINARY:04X}", PDF)
    entries = _variable(0x3701, PT_BINARY, len(PDF))
    entries += _strings(
        writer,
        base + "/",
        {0x3707: "offer.pdf", 0x3704: "offer.pdf", 0x3703: ".pdf", 0x370E: "application/pdf"},
    )
    entries += _fixed(0x3705, PT_LONG, 1) + _fixed(0x0E21, PT_LONG, 0)  # by value
    writer.addEntry(f"{base}/__properties_version1.0", b"\0" * 8 + entries)

    writer.addEntry("__nameid_version1.0", storage=True)
    for stream in ("00020102", "00030102", "00040102"):
        writer.addEntry(f"__nameid_version1.0/__substg1.0_{stream}", b"")
    with tempfile.TemporaryDirectory() as folder:
        target = Path(folder) / "sample.msg"
        writer.write(str(target))
        return target.read_bytes()


if __name__ == "__main__":
    Path(__file__).with_name("sample.msg").write_bytes(build())
