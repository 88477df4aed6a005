"""Telling a text (CSV) file's encoding from the whole file (ADR 43).

Every line is decoded as UTF-8 (a file with a BOM is UTF-8 whatever follows). A file whose
lines all decode is UTF-8. When some do not, the characters of all lines decide (so a file
whose line ends are lone CRs, one line here, decides the same): with at least as many valid
multi-byte UTF-8 characters as bytes that are none, it is UTF-8 with damaged lines, refused
with the first bad line named (never read as another encoding, which would turn all of its
Cyrillic into mojibake); otherwise the non-ASCII lines, wherever they are in the file, go to
charset-normalizer, which picks among the encodings Russian and Western spreadsheets are saved
in (by a vote of groups of lines, so that one stray byte does not swing it), and the whole file
is checked in that encoding too. Lines are physical lines (what an editor numbers), from 1.

UTF-16 (Excel's «Unicode text»: UTF-16 LE with a BOM, tab separated) is told first: by its
BOM, or without one by NUL bytes all on one side of the byte pairs (the high bytes of Latin
text); it is checked whole too, and a broken character is refused with its line (ADR 58).
"""

from __future__ import annotations

import codecs
from collections import Counter
from dataclasses import dataclass
from typing import IO

from charset_normalizer import from_bytes

LEGACY_ENCODINGS = ("cp1251", "koi8_r", "cp866", "mac_cyrillic", "iso8859_5", "cp1252")
"""What a file that is not UTF-8 may be: Windows-1251 (1C, Excel in Russian), KOI8-R, DOS 866,
Mac Cyrillic, ISO 8859-5 and Windows-1252 (Excel in Western locales)."""

EVIDENCE_BYTES = 1 << 20
"""The non-ASCII lines given to the detector, at most (they are taken from the whole file)."""
VOTES = 8

_NAMES = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "cp1251": "Windows-1251",
    "koi8_r": "KOI8-R",
    "cp866": "DOS 866",
    "mac_cyrillic": "Mac Cyrillic",
    "iso8859_5": "ISO 8859-5",
    "cp1252": "Windows-1252",
    "utf-16-le": "UTF-16 LE",
    "utf-16-be": "UTF-16 BE",
}

SNIFF_BYTES = 65_536
"""The head of a file that tells UTF-16 without a BOM."""
_UTF16_BLOCK = 1 << 20
_WIDE_BOMS = {codecs.BOM_UTF16_LE: "utf-16-le", codecs.BOM_UTF16_BE: "utf-16-be"}


class EncodingError(ValueError):
    """A file that is no text in any one encoding, with the line that shows it."""

    def __init__(self, message: str, line: int) -> None:
        super().__init__(message)
        self.line = line


@dataclass(frozen=True)
class Detected:
    """A file's encoding: the Python codec and the name people know it by."""

    codec: str
    label: str | None = None
    """The name when the codec does not tell it (``utf-16`` reads either byte order by the BOM)."""

    @property
    def name(self) -> str:
        return self.label or _NAMES.get(self.codec, self.codec)


def utf16(file: IO[bytes]) -> Detected | None:
    """The file's UTF-16 encoding when it is UTF-16 (None otherwise), told from its head: a
    UTF-16 BOM, or NUL bytes nearly all on one side of the byte pairs (the high bytes of ASCII
    characters: the odd bytes in little-endian, the even ones in big-endian), in at least one
    pair of 20 (a binary file's few NULs fall on both sides or are fewer). The file is left at
    its start."""
    file.seek(0)
    head = file.read(SNIFF_BYTES)
    file.seek(0)
    for bom, codec in _WIDE_BOMS.items():
        if head.startswith(bom):
            return Detected("utf-16", _NAMES[codec])
    head = head[: len(head) & ~1]
    even, odd = head[0::2].count(0), head[1::2].count(0)
    enough = max(len(head) // 2 // 20, 1)  # separators, digits and line ends at the least
    if odd >= enough and even * 20 <= odd:
        return Detected("utf-16-le")
    if even >= enough and odd * 20 <= even:
        return Detected("utf-16-be")
    return None


def _check_utf16(file: IO[bytes], detected: Detected) -> None:
    """EncodingError naming the first line of a UTF-16 file holding a broken character (a lone
    surrogate, a half character at the end), after decoding the whole file a block at a time."""
    file.seek(0)
    head = file.read(2)
    codec = _WIDE_BOMS.get(head) or detected.codec
    if head not in _WIDE_BOMS:
        file.seek(0)
    line = 1
    carry = b""
    while block := file.read(_UTF16_BLOCK):
        data = carry + block
        usable = len(data) & ~1
        last = data[usable - 2 : usable]
        if len(last) == 2 and 0xD8 <= last[1 if codec == "utf-16-le" else 0] <= 0xDB:
            usable -= 2  # a high surrogate: its pair is in the next block
        data, carry = data[:usable], data[usable:]
        try:
            line += data.decode(codec).count("\n")
        except UnicodeDecodeError as exc:
            good = data[: exc.start].decode(codec)
            line += good.count("\n")
            column = len(good) - good.rfind("\n")
            raise EncodingError(
                f"line {line} is not UTF-16 text (a broken character at character {column}), "
                f"while the rest of the file is {detected.name}: correct the line or save the "
                "file again; nothing was imported",
                line,
            ) from None
    if carry:
        raise EncodingError(
            f"line {line} ends in half a character: the {detected.name} file is cut short; "
            "save it again; nothing was imported",
            line,
        )


def _bad_byte(line: bytes, codec: str) -> tuple[int, int]:
    """``(byte, character)`` of the first byte of a line that does not decode (the character
    counted from 1)."""
    try:
        line.decode(codec)
    except UnicodeDecodeError as exc:
        return line[exc.start], len(line[: exc.start].decode(codec, errors="replace")) + 1
    return 0, 0


def _lines(file: IO[bytes]) -> enumerate[bytes]:
    file.seek(0)
    return enumerate(file, start=1)


def _vote(evidence: list[bytes]) -> str | None:
    """The encoding most groups of the evidence lines are in, by charset-normalizer. The
    lines go in VOTES groups of neighbours, so that a stray byte another encoding has (0x98,
    which Windows-1251 leaves undefined) rules that encoding out of one group, not of all."""
    size = -(-len(evidence) // VOTES)
    groups = [b"".join(evidence[at : at + size]) for at in range(0, len(evidence), size)]
    votes = Counter(
        best.encoding
        for group in groups
        if (best := from_bytes(group, cp_isolation=list(LEGACY_ENCODINGS)).best()) is not None
    )
    return votes.most_common(1)[0][0] if votes else None


def detect(file: IO[bytes]) -> Detected:
    """The encoding of the whole text file (EncodingError naming the line that is in none);
    the file is left at its start."""
    try:
        return _detect(file)
    finally:
        file.seek(0)


def _detect(file: IO[bytes]) -> Detected:
    wide = utf16(file)
    if wide is not None:
        _check_utf16(file, wide)
        return wide
    file.seek(0)
    bom = file.read(len(codecs.BOM_UTF8)) == codecs.BOM_UTF8
    first_bad = 0
    bad = 0
    """Lines that are not UTF-8."""
    valid = invalid = 0
    """Multi-byte UTF-8 characters, and bytes no UTF-8 character takes, in all the lines."""
    evidence: list[bytes] = []
    weight = 0
    for number, line in _lines(file):
        if line.isascii():
            continue
        try:
            valid += len(line) - len(line.decode("utf-8"))
        except UnicodeDecodeError:
            text = line.decode("utf-8", errors="replace")
            broken = text.count("\ufffd")
            valid += len(line) - len(text)
            invalid += broken
            bad += 1
            first_bad = first_bad or number
            if weight < EVIDENCE_BYTES:
                evidence.append(line)
                weight += len(line)
    if not bad:
        return Detected("utf-8-sig" if bom else "utf-8")
    if bom or valid >= invalid:
        file.seek(0)
        line = next(line for number, line in _lines(file) if number == first_bad)
        byte, column = _bad_byte(line.removeprefix(codecs.BOM_UTF8), "utf-8")
        others = f" ({bad} lines in all)" if bad > 1 else ""
        raise EncodingError(
            f"line {first_bad} is not UTF-8 text (byte 0x{byte:02X} at character {column}){others},"
            " while the rest of the file is UTF-8: correct the line or save the file as UTF-8 "
            "again; nothing was imported",
            first_bad,
        )
    best = _vote(evidence)
    if best is None:
        raise EncodingError(
            f"the file's encoding cannot be told (line {first_bad} is not UTF-8 text, nor "
            "Windows-1251, KOI8-R or DOS 866); save the file as UTF-8",
            first_bad,
        )
    detected = Detected(best)
    for number, line in _lines(file):
        if not line.isascii():
            try:
                line.decode(detected.codec)
            except UnicodeDecodeError:
                byte, column = _bad_byte(line, detected.codec)
                raise EncodingError(
                    f"line {number} is neither UTF-8 nor {detected.name} text (byte 0x{byte:02X} "
                    f"at character {column}), while the rest of the file is {detected.name}: "
                    "correct the line or save the file as UTF-8",
                    number,
                ) from None
    return detected
