"""Paper post as PDF (ADR 46): the personalised letters on A4 under the company letterhead, the
envelopes (DL, C5) in the Russian postal address layout.

Pure functions of their inputs (no I/O but the fonts), run in worker processes (rendering
thousands of pages is CPU work; reportlab is imported only there, through ``postal``). PT Sans
(ParaType, OFL-1.1, from the ``fontpkg-pt-sans`` wheel) is embedded as a subset: Cyrillic
prints the same on every printer.
"""

from __future__ import annotations

import functools
import io
import re
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any
from xml.sax.saxutils import escape

from PIL import Image, UnidentifiedImageError
from reportlab.lib.pagesizes import A4
from reportlab.lib.styles import ParagraphStyle
from reportlab.lib.units import mm
from reportlab.lib.utils import ImageReader
from reportlab.pdfbase import pdfmetrics
from reportlab.pdfbase.ttfonts import TTFont
from reportlab.pdfgen.canvas import Canvas
from reportlab.platypus import KeepTogether, PageBreak, Paragraph, SimpleDocTemplate, Spacer

from clientele_campaigns.mailings.postal import (
    EnvelopeFormat,
    Letter,
    LetterheadInvalid,
    PrintJob,
    PrintResult,
    Sender,
    consumables,
)

ENVELOPES: dict[str, tuple[float, float]] = {"dl": (220 * mm, 110 * mm), "c5": (229 * mm, 162 * mm)}
"""Envelope sizes (width, height; ISO 269), printed landscape."""
FONT, BOLD = "PTSans", "PTSans-Bold"
LETTERHEAD_MAX_HEIGHT = 40 * mm
LETTERHEAD_MAX_PIXELS = 40_000_000
MARGIN = 20 * mm


@functools.cache
def register_fonts() -> None:
    """PT Sans regular and bold, registered with reportlab once per process."""
    root = files("fontpkg_pt_sans").joinpath("files")
    for name, filename in ((FONT, "PT_Sans-Web-Regular.ttf"), (BOLD, "PT_Sans-Web-Bold.ttf")):
        with root.joinpath(filename).open("rb") as handle:
            pdfmetrics.registerFont(TTFont(name, io.BytesIO(handle.read())))
    pdfmetrics.registerFontFamily(FONT, normal=FONT, bold=BOLD, italic=FONT, boldItalic=BOLD)


def measure_letterhead(data: bytes) -> tuple[int, int]:
    """The pixel size of a PNG or JPEG letterhead (LetterheadInvalid otherwise)."""
    try:
        with Image.open(io.BytesIO(data)) as image:
            if image.format not in {"PNG", "JPEG"}:
                raise LetterheadInvalid("a letterhead is a PNG or JPEG image")
            width, height = image.size
            if width * height > LETTERHEAD_MAX_PIXELS:
                raise LetterheadInvalid("the letterhead has too many pixels")
            image.load()
    except (UnidentifiedImageError, OSError, Image.DecompressionBombError, SyntaxError) as exc:
        raise LetterheadInvalid(f"the letterhead is not a readable image ({exc})") from None
    return width, height


@dataclass
class Printed:
    """What rendering made: the PDF and its pages."""

    pdf: bytes
    pages: int
    page_of_letter: list[int] = field(default_factory=list)


def _styles() -> dict[str, ParagraphStyle]:
    register_fonts()
    body = ParagraphStyle("body", fontName=FONT, fontSize=11, leading=15, spaceAfter=6)
    return {
        "body": body,
        "addressee": ParagraphStyle(
            "addressee", parent=body, leftIndent=95 * mm, spaceAfter=0, leading=14
        ),
        "subject": ParagraphStyle(
            "subject", parent=body, fontName=BOLD, fontSize=12, spaceBefore=10, spaceAfter=10
        ),
    }


def _paragraphs(text: str, style: ParagraphStyle) -> list[Paragraph]:
    blocks = re.split(r"\n\s*\n", text.strip())
    return [Paragraph(escape(b.strip()).replace("\n", "<br/>"), style) for b in blocks if b.strip()]


def render_letters(letters: list[Letter], letterhead: bytes | None) -> Printed:
    """One A4 PDF of every letter, each starting on a new sheet, the letterhead across the top
    of each page (scaled to the text width, at most 40 mm high)."""
    styles = _styles()
    head: ImageReader | None = None
    head_height = 0.0
    width = A4[0] - 2 * MARGIN
    if letterhead is not None:
        head = ImageReader(io.BytesIO(letterhead))
        pixels_w, pixels_h = head.getSize()
        head_height = min(LETTERHEAD_MAX_HEIGHT, width * pixels_h / pixels_w)
    starts: list[int] = []

    def on_page(canvas: Canvas, _doc: Any) -> None:
        if head is not None:
            canvas.drawImage(
                head,
                MARGIN,
                A4[1] - MARGIN / 2 - head_height,
                width=width,
                height=head_height,
                preserveAspectRatio=True,
                anchor="nw",
                mask="auto",
            )

    class Mark(Spacer):  # type: ignore[misc]  # reportlab has no type hints
        """Notes the page a letter starts on (the letters' page counts)."""

        def __init__(self) -> None:
            super().__init__(0, 0)

        def draw(self) -> None:
            starts.append(self.canv.getPageNumber())

    story: list[Any] = []
    for index, letter in enumerate(letters):
        if index:
            story.append(PageBreak())
        block = [Paragraph(escape(line), styles["addressee"]) for line in letter.addressee]
        block += [Paragraph(escape(line), styles["addressee"]) for line in letter.address.lines]
        block.append(Paragraph(escape(letter.address.postcode), styles["addressee"]))
        story += [Mark(), KeepTogether(block), Paragraph(escape(letter.subject), styles["subject"])]
        story += _paragraphs(letter.body, styles["body"])
    buffer = io.BytesIO()
    doc = SimpleDocTemplate(
        buffer,
        pagesize=A4,
        leftMargin=MARGIN,
        rightMargin=MARGIN,
        topMargin=MARGIN / 2 + head_height + (8 * mm if head is not None else MARGIN / 2),
        bottomMargin=MARGIN,
        title="Письма",
        author="Clientele",
        invariant=True,
        initialFontName=FONT,
    )
    doc.build(
        story,
        onFirstPage=on_page,
        onLaterPages=on_page,
    )
    return Printed(pdf=buffer.getvalue(), pages=doc.page, page_of_letter=starts)


def _lines(
    canvas: Canvas, x: float, y: float, lines: list[str], size: float, width: float
) -> float:
    """Draw lines downwards from ``y`` (each cut to ``width``); the ``y`` below them."""
    for line in lines:
        text = line
        while text and pdfmetrics.stringWidth(text, FONT, size) > width:
            text = text[:-1]
        canvas.setFont(FONT, size)
        canvas.drawString(x, y, text)
        y -= size * 1.35
    return y


def render_envelopes(letters: list[Letter], sender: Sender, kind: EnvelopeFormat) -> Printed:
    """One page per envelope in the Russian layout: the sender («От кого», «Откуда») at the
    top left, the recipient («Кому», «Куда») at the bottom right, each address ending with its
    postcode on a line of its own, and the recipient's postcode large at the bottom left."""
    register_fonts()
    size = ENVELOPES[kind]
    buffer = io.BytesIO()
    canvas = Canvas(buffer, pagesize=size, invariant=True, initialFontName=FONT)
    canvas.setTitle("Конверты")
    canvas.setAuthor("Clientele")
    page_w, page_h = size
    pad = 10 * mm
    half = page_w / 2 - pad
    for letter in letters:
        y = _lines(canvas, pad, page_h - pad - 3 * mm, ["От кого: " + sender.name], 9, half)
        y = _lines(canvas, pad, y, ["Откуда: " + ", ".join(sender.address.lines)], 9, half)
        _lines(canvas, pad, y, ["Индекс: " + sender.address.postcode], 9, half)
        recipient = ["Кому: " + letter.recipient]
        where = ["Куда: " + (letter.address.lines[0] if letter.address.lines else "")]
        where += list(letter.address.lines[1:])
        block = recipient + where + [letter.address.postcode]
        top = pad + len(block) * 11 * 1.35 + 2 * mm
        _lines(canvas, page_w / 2, top, block, 11, half)
        canvas.setFont(BOLD, 20)
        canvas.drawString(pad, pad, letter.address.postcode)
        canvas.showPage()
    canvas.save()
    return Printed(pdf=buffer.getvalue(), pages=len(letters))


def render(job: PrintJob) -> PrintResult:
    """The letters' and envelopes' PDFs and their consumables."""
    letters = render_letters(job.letters, job.letterhead)
    envelopes = render_envelopes(job.letters, job.sender, job.envelope)
    return PrintResult(
        letters_pdf=letters.pdf,
        envelopes_pdf=envelopes.pdf,
        pages=letters.pages,
        consumables=consumables(letters.pages, envelopes.pages, job.cartridge_yield),
    )
