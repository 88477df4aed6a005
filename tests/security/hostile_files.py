"""Hostile and broken files, generated: spreadsheets (.xlsx, CSV), e-mails (.eml), Outlook
files (.msg, from the real corpus in ``services/interactions/tests/corpus/outlook``, damaged in
seeded ways) and attachments. Each is (name, bytes); the bombs are small on the wire and large
once unpacked."""

from __future__ import annotations

import functools
import io
import random
import struct
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUTLOOK = REPO / "services" / "interactions" / "tests" / "corpus" / "outlook"

Sample = tuple[str, bytes]

_NS = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
_REL = "http://schemas.openxmlformats.org/officeDocument/2006/relationships"
_OFFICE = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_CONTENT_TYPES = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
    '<Default Extension="rels" '
    'ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
    '<Default Extension="xml" ContentType="application/xml"/>'
    f'<Override PartName="/xl/workbook.xml" ContentType="{_OFFICE}.sheet.main+xml"/>'
    f'<Override PartName="/xl/worksheets/sheet1.xml" ContentType="{_OFFICE}.worksheet+xml"/>'
    f'<Override PartName="/xl/sharedStrings.xml" ContentType="{_OFFICE}.sharedStrings+xml"/>'
    "</Types>"
)
_ROOT_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/officeDocument" Target="xl/workbook.xml"/>'
    "</Relationships>"
)
_WORKBOOK = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    f'<workbook xmlns="{_NS}" xmlns:r="{_REL}">'
    '<sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>'
)
_WORKBOOK_RELS = (
    '<?xml version="1.0" encoding="UTF-8"?>'
    '<Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
    f'<Relationship Id="rId1" Type="{_REL}/worksheet" Target="worksheets/sheet1.xml"/>'
    f'<Relationship Id="rId2" Type="{_REL}/sharedStrings" Target="sharedStrings.xml"/>'
    "</Relationships>"
)
_HEADER_ROW = (
    '<row r="1"><c r="A1" t="inlineStr"><is><t>ИНН</t></is></c>'
    '<c r="B1" t="inlineStr"><is><t>Наименование</t></is></c></row>'
)


def _sheet(rows: Iterable[bytes]) -> Iterator[bytes]:
    yield f'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="{_NS}"><sheetData>'.encode()
    yield _HEADER_ROW.encode()
    yield from rows
    yield b"</sheetData></worksheet>"


def _strings(items: Iterable[bytes]) -> Iterator[bytes]:
    yield f'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="{_NS}">'.encode()
    yield from items
    yield b"</sst>"


def xlsx(sheet: Iterable[bytes], strings: Iterable[bytes] | None = None) -> bytes:
    """An .xlsx package streamed from its parts (deflated: a bomb stays small)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
        package.writestr("_rels/.rels", _ROOT_RELS)
        package.writestr("xl/workbook.xml", _WORKBOOK)
        package.writestr("xl/_rels/workbook.xml.rels", _WORKBOOK_RELS)
        with package.open("xl/worksheets/sheet1.xml", "w") as part:
            for chunk in sheet:
                part.write(chunk)
        with package.open("xl/sharedStrings.xml", "w") as part:
            for chunk in strings if strings is not None else _strings([]):
                part.write(chunk)
    return buffer.getvalue()


def _repeat(chunk: bytes, total: int) -> Iterator[bytes]:
    block = chunk * max(1, (1 << 20) // len(chunk))
    for _ in range(max(1, total // len(block))):
        yield block


def _wrong_crc(package: bytes) -> bytes:
    """The package with the first entry's CRC-32 (local header and central directory) wrong."""
    data = bytearray(package)
    crc = struct.unpack_from("<I", data, 14)[0]
    wrong = struct.pack("<I", crc ^ 0xDEADBEEF)
    data[14:18] = wrong
    central = data.find(b"PK\x01\x02")
    data[central + 16 : central + 20] = wrong
    return bytes(data)


@functools.cache
def spreadsheets() -> list[Sample]:
    """Hostile spreadsheets for the directory's import and list upload."""
    valid_row = (
        b'<row r="2"><c r="A2" t="inlineStr"><is><t>7707083893</t></is></c>'
        b'<c r="B2" t="inlineStr"><is><t>OOO Test</t></is></c></row>'
    )
    plain = xlsx(_sheet([valid_row]))
    bidi = "\u202etxt.exe".encode()
    return [
        ("plain.xlsx", plain),
        ("zip-bomb.xlsx", xlsx(_sheet(_repeat(b"<!-- " + b"a" * 1000 + b" -->", 200 << 20)))),
        (
            "empty-rows-bomb.xlsx",
            xlsx(_sheet(f'<row r="{n}"/>'.encode() for n in range(2, 1_000_002))),
        ),
        (
            "shared-strings-bomb.xlsx",
            xlsx(
                _sheet([b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>']),
                _strings(_repeat(b"<si><t>AAAAAAAA</t></si>", 120 << 20)),
            ),
        ),
        (
            "shared-string-huge.xlsx",
            xlsx(
                _sheet([b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>']),
                _strings([b"<si><t>", *_repeat(b"B", 100 << 20), b"</t></si>"]),
            ),
        ),
        (
            "shared-string-index.xlsx",
            xlsx(_sheet([b'<row r="2"><c r="A2" t="s"><v>99999999999999999999</v></c></row>'])),
        ),
        (
            "huge-row-number.xlsx",
            xlsx(
                _sheet(
                    [
                        valid_row,
                        b'<row r="999999999999"><c t="inlineStr"><is><t>x</t></is></c></row>',
                    ]
                )
            ),
        ),
        ("row-number-nan.xlsx", xlsx(_sheet([b'<row r="nan"/>', b'<row r="1e400"/>']))),
        ("huge-column.xlsx", xlsx(_sheet([b'<row r="2"><c r="XFD99999999"><v>1</v></c></row>']))),
        (
            "nul-in-xml.xlsx",
            xlsx(_sheet([b'<row r="2"><c t="inlineStr"><is><t>a\x00b</t></is></c></row>'])),
        ),
        (
            "nul-reference.xlsx",
            xlsx(_sheet([b'<row r="2"><c t="inlineStr"><is><t>a&#0;b</t></is></c></row>'])),
        ),
        (
            "deep-nesting.xlsx",
            xlsx(
                _sheet(
                    [
                        b'<row r="2"><c t="inlineStr"><is>',
                        b"<r>" * 100_000,
                        b"</r>" * 100_000,
                        b"</is></c></row>",
                    ]
                )
            ),
        ),
        (
            "billion-laughs.xlsx",
            xlsx(
                _sheet([b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>']),
                [
                    b'<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY a "aaaaaaaaaa">'
                    + b"".join(
                        f'<!ENTITY {chr(98 + i)} "{("&" + chr(97 + i) + ";") * 10}">'.encode()
                        for i in range(9)
                    )
                    + f']><sst xmlns="{_NS}"><si><t>&j;</t></si></sst>'.encode()
                ],
            ),
        ),
        (
            "external-entity.xlsx",
            xlsx(
                _sheet([b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>']),
                [
                    b'<?xml version="1.0"?><!DOCTYPE sst [<!ENTITY x SYSTEM "file:///etc/passwd">]>'
                    + f'<sst xmlns="{_NS}"><si><t>&x;</t></si></sst>'.encode()
                ],
            ),
        ),
        ("wrong-crc.xlsx", _wrong_crc(plain)),
        ("truncated.xlsx", plain[: len(plain) // 2]),
        ("not-a-zip.xlsx", b"this is not a spreadsheet"),
        ("empty-zip.xlsx", _empty_zip()),
        ("old-excel.xls", b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1" + b"\x00" * 504),
        ("nul.csv", b"INN;Name\r\n7707083893;a\x00b\r\n"),
        (
            "broken-utf8-late.csv",
            b"INN;Name\r\n" + b"7707083893;abc\r\n" * 8000 + b"1;\xff\xfe\xc3\r\n",
        ),
        ("cesu-surrogate.csv", b"INN;Name\r\n7707083893;\xed\xa0\x80\r\n"),
        ("utf16.csv", "ИНН;Наименование\r\n7707083893;Тест\r\n".encode("utf-16")),
        ("bom-only.csv", b"\xef\xbb\xbf"),
        ("empty.csv", b""),
        ("long-line.csv", b"INN;Name\r\n7707083893;" + b"x" * (4 << 20) + b"\r\n"),
        ("many-columns.csv", b";".join([b"c"] * 20_000) + b"\r\n" + b";".join([b"1"] * 20_000)),
        ("open-quote.csv", b'INN;Name\r\n7707083893;"' + b"y" * (1 << 20)),
        ("formula.csv", b"INN;Name\r\n7707083893;=cmd|' /C calc'!A0\r\n"),
        (bidi.decode() + ".csv", b"INN;Name\r\n7707083893;x\r\n"),
    ]


def _empty_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w"):
        pass
    return buffer.getvalue()


def _eml(headers: str, body: bytes) -> bytes:
    return headers.replace("\n", "\r\n").encode() + b"\r\n" + body


_MAIL_HEADERS = (
    "From: Sender <sender@client.example>\n"
    "To: Us <sales@ourco.example>\n"
    "Subject: {subject}\n"
    "Date: Mon, 02 Mar 2026 10:15:00 +0300\n"
    "Message-ID: <{id}@client.example>\n"
    "MIME-Version: 1.0\n"
)


def _nested(depth: int) -> bytes:
    """The body of a multipart of ``depth`` levels (the message's own header names ``b0``)."""
    parts = ["--b0\r\n"]
    for level in range(1, depth):
        parts.append(f'Content-Type: multipart/mixed; boundary="b{level}"\r\n\r\n--b{level}\r\n')
    parts.append("Content-Type: text/plain\r\n\r\ndeep\r\n")
    for level in reversed(range(depth)):
        parts.append(f"--b{level}--\r\n")
    return "".join(parts).encode()


@functools.cache
def emails() -> list[Sample]:
    """Hostile .eml files for the e-mail capture."""
    rng = random.Random(18)

    def headers(subject: str) -> str:
        return _MAIL_HEADERS.format(subject=subject, id=rng.getrandbits(64))

    many_parts = "".join(
        f"--p\r\nContent-Type: text/plain\r\n\r\npart {n}\r\n" for n in range(5_000)
    )
    recipients = ", ".join(f"r{n}@client.example" for n in range(10_000))
    deflated = zlib.compress(b"\x00" * (50 << 20), 9)
    return [
        (
            "deep-multipart.eml",
            _eml(
                headers("deep") + 'Content-Type: multipart/mixed; boundary="b0"\n', _nested(1_200)
            ),
        ),
        (
            "many-parts.eml",
            _eml(
                headers("many") + 'Content-Type: multipart/mixed; boundary="p"\n',
                (many_parts + "--p--\r\n").encode(),
            ),
        ),
        ("nul.eml", _eml(headers("nul\x00subject").replace("sender@", "se\x00nder@"), b"a\x00b")),
        (
            "bad-charset.eml",
            _eml(
                headers("=?x-unknown?b?////?= =?utf-8?q?=FF=FE?=")
                + 'Content-Type: text/plain; charset="x-no-such-charset"\n'
                "Content-Transfer-Encoding: base64\n",
                b"!!!not base64!!!\r\n",
            ),
        ),
        (
            "bad-quoted-printable.eml",
            _eml(
                headers("qp") + "Content-Type: text/html; charset=utf-8\n"
                "Content-Transfer-Encoding: quoted-printable\n",
                b"<script>alert(1)</script>=ZZ=\r\n=C3",
            ),
        ),
        ("huge-header.eml", _eml(headers("h" * (1 << 20)), b"body")),
        ("many-recipients.eml", _eml(headers("cc") + f"Cc: {recipients}\n", b"body")),
        (
            "compressed-attachment.eml",
            _eml(
                headers("zip") + 'Content-Type: multipart/mixed; boundary="z"\n',
                b"--z\r\nContent-Type: text/plain\r\n\r\nsee attached\r\n--z\r\n"
                b"Content-Type: application/zip\r\nContent-Transfer-Encoding: base64\r\n"
                b'Content-Disposition: attachment; filename="\xe2\x80\xaebomb.zip"\r\n\r\n'
                + _b64(_zip_bomb())
                + b"\r\n--z--\r\n",
            ),
        ),
        (
            "address-garbage.eml",
            _eml(headers("addr").replace("sender@client.example", '"<>"@@[::1'), b"x"),
        ),
        ("not-mail.eml", deflated[:4096]),
        ("empty.eml", b""),
    ]


def _b64(data: bytes) -> bytes:
    import base64

    return base64.encodebytes(data)


@functools.cache
def _zip_bomb() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as package:
        with package.open("word/document.xml", "w") as part:
            for chunk in _repeat(b"\x00", 100 << 20):
                part.write(chunk)
        package.writestr("[Content_Types].xml", _CONTENT_TYPES)
    return buffer.getvalue()


@functools.cache
def outlook() -> list[Sample]:
    """The real Outlook corpus, and copies damaged in seeded ways (cut short, bytes flipped)."""
    rng = random.Random(31)
    samples: list[Sample] = []
    for path in sorted(OUTLOOK.glob("*.msg")):
        data = path.read_bytes()
        samples.append((path.name, data))
        samples.append((f"cut-{path.name}", data[: len(data) // 3]))
        flipped = bytearray(data)
        for _ in range(40):
            flipped[rng.randrange(512, len(flipped))] = rng.randrange(256)
        samples.append((f"flipped-{path.name}", bytes(flipped)))
    header = bytearray((OUTLOOK / "simple_test_msg.msg").read_bytes()[:512])
    header[0x30:0x34] = struct.pack("<I", 0xFFFFFFF0)  # the directory starts nowhere
    samples.append(("bad-directory.msg", bytes(header) + b"\x00" * 4096))
    samples.append(("empty.msg", b""))
    return samples


@functools.cache
def attachments() -> list[Sample]:
    """Hostile attachments."""
    return [
        ("bomb.docx", _zip_bomb()),
        ("\u202efdp.exe", b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"),
        ("../../etc/passwd", b"root:x:0:0\n"),
        ("nul\x00name.txt", b"hello"),
        ("empty.txt", b""),
        ("fake.pdf", b"MZ\x90\x00" + b"\x00" * 200),
        ("truncated.docx", _zip_bomb()[:200]),
    ]
