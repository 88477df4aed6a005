"""Paper post without the PDF library (ADR 46): the postal layout of an address, the letters
and envelopes a paper mailing prints, and the consumables they take. The rendering itself
(``printing``, reportlab) runs in worker processes only: the service process never loads it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal
from typing import Any, Literal

EnvelopeFormat = Literal["dl", "c5"]
_POSTCODE = re.compile(r"^\s*(\d{6})\s*,?\s*")


class LetterheadInvalid(ValueError):
    """The uploaded letterhead is no image we can print."""


@dataclass(frozen=True)
class PostalAddress:
    """An address as the envelope writes it: the lines, then the postcode on its own."""

    lines: tuple[str, ...]
    postcode: str


def postal_address(address: dict[str, Any] | None) -> PostalAddress | None:
    """The postal layout of a directory address (its text, split at commas, without the
    postcode it may start with), or None without a six-digit postcode."""
    if not address or not isinstance(address.get("text"), str):
        return None
    text = address["text"]
    match = _POSTCODE.match(text)
    postcode = address.get("postal_code") or (match.group(1) if match else None)
    if not isinstance(postcode, str) or not re.fullmatch(r"\d{6}", postcode.strip()):
        return None
    if match:
        text = text[match.end() :]
    lines = tuple(part.strip() for part in text.split(",") if part.strip())
    return PostalAddress(lines=lines, postcode=postcode.strip())


@dataclass(frozen=True)
class Letter:
    """One recipient's letter: who it is to (the addressee block) and what it says."""

    addressee: tuple[str, ...]
    address: PostalAddress
    subject: str
    body: str
    recipient: str = ""
    """The name on the envelope."""


@dataclass(frozen=True)
class Sender:
    name: str
    address: PostalAddress


@dataclass(frozen=True)
class Consumables:
    """What a paper mailing takes: A4 sheets (one side printed), envelopes, toner."""

    sheets: int
    envelopes: int
    toner_cartridges: Decimal


def consumables(pages: int, envelopes: int, cartridge_yield: int) -> Consumables:
    """The sheets (one per printed page), the envelopes and the toner: printed pages (letters
    and envelopes) over a cartridge's ISO/IEC 19752 yield (pages at 5 % coverage), to 0.01."""
    used = Decimal(pages + envelopes) / Decimal(cartridge_yield)
    return Consumables(
        sheets=pages,
        envelopes=envelopes,
        toner_cartridges=used.quantize(Decimal("0.01"), rounding=ROUND_HALF_UP),
    )


@dataclass(frozen=True)
class PrintJob:
    """Everything one paper mailing's printing needs (sent to a worker process)."""

    letters: list[Letter]
    letterhead: bytes | None
    sender: Sender
    envelope: EnvelopeFormat
    cartridge_yield: int


@dataclass(frozen=True)
class PrintResult:
    letters_pdf: bytes
    envelopes_pdf: bytes
    pages: int
    consumables: Consumables


def print_job(job: PrintJob) -> PrintResult:
    """The letters' and envelopes' PDFs and their consumables (in a worker process: reportlab
    is imported there, not in the service)."""
    from clientele_campaigns.mailings.printing import render

    return render(job)


def letterhead_size(data: bytes) -> tuple[int, int]:
    """The pixel size of a PNG or JPEG letterhead (LetterheadInvalid otherwise; Pillow is
    imported on first use, in the thread that checks)."""
    from clientele_campaigns.mailings.printing import measure_letterhead

    return measure_letterhead(data)
