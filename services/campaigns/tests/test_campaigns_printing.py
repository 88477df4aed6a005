"""Unit tests of paper post's rendering (ADR 46): addresses, consumables, letterheads, PDFs."""

from __future__ import annotations

import io
from decimal import Decimal

import pytest
from clientele_campaigns.mailings.postal import (
    Letter,
    LetterheadInvalid,
    PostalAddress,
    Sender,
    consumables,
    letterhead_size,
    postal_address,
)
from clientele_campaigns.mailings.printing import render_envelopes, render_letters
from PIL import Image
from pypdf import PdfReader

MOSCOW = PostalAddress(lines=("г. Москва", "ул. Тверская", "д. 1"), postcode="125009")


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ({"text": "620014, г. Екатеринбург, ул. Малышева, 36"}, ("620014", 3)),
        ({"text": "г. Тверь, ул. Советская, 1", "postal_code": "170100"}, ("170100", 3)),
        ({"text": "170100 г. Тверь", "postal_code": " 170100 "}, ("170100", 1)),
        ({"text": "г. Тверь, ул. Советская, 1"}, None),
        ({"text": "12345, г. Тверь"}, None),
        ({"text": "г. Тверь", "postal_code": "SW1A 1AA"}, None),
        ({"postal_code": "170100"}, None),
        (None, None),
    ],
)
def test_a_postal_address_needs_a_six_digit_postcode(
    address: dict[str, str] | None, expected: tuple[str, int] | None
) -> None:
    found = postal_address(address)
    if expected is None:
        assert found is None
    else:
        assert found is not None
        assert (found.postcode, len(found.lines)) == expected
        assert all(expected[0] not in line for line in found.lines)


def test_consumables_count_pages_envelopes_and_toner() -> None:
    used = consumables(pages=2_995, envelopes=2_000, cartridge_yield=3_000)
    assert (used.sheets, used.envelopes) == (2_995, 2_000)
    assert used.toner_cartridges == Decimal("1.67")  # 4,995 / 3,000, half up
    assert consumables(1, 0, 3_000).toner_cartridges == Decimal("0.00")


def _image(kind: str, size: tuple[int, int] = (300, 60)) -> bytes:
    out = io.BytesIO()
    Image.new("RGB", size, (10, 10, 10)).save(out, kind)
    return out.getvalue()


def test_a_letterhead_is_a_png_or_jpeg() -> None:
    assert letterhead_size(_image("PNG")) == (300, 60)
    assert letterhead_size(_image("JPEG")) == (300, 60)
    for bad in (_image("GIF"), b"", b"\x89PNG\r\n\x1a\n" + b"\0" * 40, _image("PNG")[:80]):
        with pytest.raises(LetterheadInvalid):
            letterhead_size(bad)


def test_a_long_letter_flows_onto_more_sheets_and_the_next_starts_on_its_own() -> None:
    long_one = Letter(("ООО «Альфа»",), MOSCOW, "Тема", "Абзац текста.\n\n" * 200, "Альфа")
    short = Letter(("ООО «Бета»",), MOSCOW, "Тема", "Коротко: «ёЁ» & <b>не тег</b>", "Бета")
    printed = render_letters([long_one, short], None)
    reader = PdfReader(io.BytesIO(printed.pdf))
    assert printed.pages == len(reader.pages) > 2
    assert printed.page_of_letter == [1, printed.pages]
    last = reader.pages[-1].extract_text()
    assert "ООО «Бета»" in last
    assert "Коротко: «ёЁ» & <b>не тег</b>" in last


def test_an_envelope_is_cut_to_its_format() -> None:
    letter = Letter(("ООО «Альфа»",), MOSCOW, "Тема", "Текст", "ООО «Альфа», Иванов И. П.")
    for kind, (width, height) in {"dl": (220, 110), "c5": (229, 162)}.items():
        printed = render_envelopes([letter] * 3, Sender("ООО «Клиентела»", MOSCOW), kind)  # type: ignore[arg-type]
        reader = PdfReader(io.BytesIO(printed.pdf))
        assert len(reader.pages) == 3
        box = reader.pages[0].mediabox
        assert (round(float(box.width) / 72 * 25.4), round(float(box.height) / 72 * 25.4)) == (
            width,
            height,
        )
        assert reader.pages[0].extract_text().splitlines()[-1].strip() == "125009"
