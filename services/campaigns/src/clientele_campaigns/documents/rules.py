"""Documents of an event: the model, and the text taken out of a file to search it by (no I/O
beyond the file handed in; run off the event loop)."""

from __future__ import annotations

import codecs
import re
import uuid
import zipfile
from datetime import datetime
from typing import BinaryIO, Literal

from pydantic import BaseModel
from pypdf import PdfReader

DocumentCategory = Literal["programme", "presentation", "contract", "photo", "other"]

MAX_TEXT = 100_000
"""Characters of extracted text kept to search by (the rest of a long file is not indexed)."""
MAX_PDF_PAGES = 50
MAX_XML_BYTES = 4 << 20
"""Uncompressed bytes of an Office file's text parts read at most (a zip bomb reads no more)."""
_OOXML_TEXT = {
    "application/vnd.openxmlformats-officedocument.wordprocessingml.document": (
        r"word/document\.xml"
    ),
    "application/vnd.openxmlformats-officedocument.presentationml.presentation": (
        r"ppt/slides/slide\d+\.xml"
    ),
    "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet": r"xl/sharedStrings\.xml",
}
_XML_TEXT = re.compile(rb"<(?:w|a):t(?:\s[^>]*)?>([^<]*)</(?:w|a):t>|<t(?:\s[^>]*)?>([^<]*)</t>")
_ENTITIES = {b"&amp;": b"&", b"&lt;": b"<", b"&gt;": b">", b"&quot;": b'"', b"&apos;": b"'"}


class Document(BaseModel):
    """A file of a marketing event; ``text_indexed`` says whether its content is searchable."""

    id: uuid.UUID
    campaign_id: uuid.UUID
    category: DocumentCategory
    filename: str
    description: str | None
    content_type: str
    size: int
    sha256: str
    text_indexed: bool
    created_at: datetime
    created_by: str


class FoundDocument(Document):
    """A document found by text, with the title of its event."""

    campaign_title: str


def _clean(text: str) -> str:
    """Text fit for PostgreSQL (no NUL), whitespace runs folded, at most MAX_TEXT characters."""
    return " ".join(text.replace("\x00", " ").split())[:MAX_TEXT]


def _plain(file: BinaryIO) -> str | None:
    data = file.read(MAX_TEXT * 4)
    for encoding in ("utf-8", "cp1251"):
        try:
            return codecs.getincrementaldecoder(encoding)().decode(data, final=False)
        except UnicodeDecodeError:
            continue
    return None


def _pdf(file: BinaryIO) -> str:
    reader = PdfReader(file)
    parts: list[str] = []
    for page in reader.pages[:MAX_PDF_PAGES]:
        parts.append(page.extract_text() or "")
        if sum(map(len, parts)) >= MAX_TEXT:
            break
    return "\n".join(parts)


def _ooxml(file: BinaryIO, parts: str) -> str:
    pattern = re.compile(parts)
    texts: list[bytes] = []
    budget = MAX_XML_BYTES
    with zipfile.ZipFile(file) as archive:
        for name in sorted(n for n in archive.namelist() if pattern.fullmatch(n)):
            with archive.open(name) as member:
                data = member.read(budget)
            budget -= len(data)
            for match in _XML_TEXT.finditer(data):
                text = match.group(1) or match.group(2) or b""
                for entity, char in _ENTITIES.items():
                    text = text.replace(entity, char)
                texts.append(text)
            if budget <= 0:
                break
    return b" ".join(texts).decode("utf-8", errors="replace")


def extract_text(file: BinaryIO, content_type: str) -> str | None:
    """The searchable text of a file where it is cheap to get (plain text, PDF, Word,
    PowerPoint, Excel); None for other types or a file that does not parse. Blocking."""
    file.seek(0)
    try:
        if content_type.startswith("text/"):
            text = _plain(file)
        elif content_type == "application/pdf":
            text = _pdf(file)
        elif content_type in _OOXML_TEXT:
            text = _ooxml(file, _OOXML_TEXT[content_type])
        else:
            return None
    except Exception:  # a damaged file is kept, just not searchable by its content
        return None
    finally:
        file.seek(0)
    return _clean(text) if text else None
