"""Import files' encodings told from the whole file (ADR 43): a UTF-8 file with one stray byte
is refused with that line named (never read as Windows-1251, which made mojibake of all of it),
a Windows-1251 file whose first 64 KB are Latin is read as Windows-1251, and an encoding error
names the line an editor shows (3002, where the reader's read-ahead said 2914)."""

from __future__ import annotations

import codecs
import csv
import io

import pytest
from clientele_directory import charsets
from clientele_directory.tabular import TabularError, last_row, open_table, read_rows
from clientele_testkit.import_generator import generate


def _csv(rows: list[list[str | None]]) -> str:
    out = io.StringIO()
    csv.writer(out, delimiter=";", lineterminator="\r\n").writerows(
        [["" if cell is None else cell for cell in row] for row in rows]
    )
    return out.getvalue()


def _generated(rows: int) -> str:
    file = generate(rows)
    return _csv([list(file.header), *file.rows])


def test_a_generated_1c_file_in_windows_1251_is_read_as_it() -> None:
    text = _generated(300)
    table = open_table(io.BytesIO(text.encode("cp1251")), "base.csv")
    assert table.encoding == "Windows-1251"
    assert list(table.rows) == list(read_rows(io.BytesIO(text.encode("utf-8")), "base.csv"))


@pytest.mark.parametrize(("codec", "name"), [("utf-8", "UTF-8"), ("utf-8-sig", "UTF-8")])
def test_utf8_files_are_read_as_utf8(codec: str, name: str) -> None:
    table = open_table(io.BytesIO(_generated(50).encode(codec)), "base.csv")
    assert table.encoding == name
    assert next(table.rows)[0] == "Наименование"


def test_one_stray_byte_in_a_utf8_file_refuses_it_naming_the_line() -> None:
    lines = _generated(4000).encode().split(b"\r\n")
    lines[3001] = lines[3001].replace("Ленина".encode(), b"\xc1\xe5\xeb\xee\xe9", 1)  # "Белой"
    assert b"\xc1" in lines[3001]
    with pytest.raises(TabularError) as caught:
        list(read_rows(io.BytesIO(b"\r\n".join(lines)), "base.csv"))
    message = str(caught.value)
    assert message.startswith("line 3002 is not UTF-8 text (byte 0xC1 at character")
    assert "the rest of the file is UTF-8" in message


def test_a_stray_byte_in_a_file_with_a_bom_is_refused_too() -> None:
    content = "Наименование\r\nАльфа\r\n".encode("utf-8-sig") + b"Bad \xff\r\n"
    with pytest.raises(TabularError, match=r"^line 3 is not UTF-8 text \(byte 0xFF at char"):
        list(read_rows(io.BytesIO(content), "o.csv"))


def test_a_windows_1251_file_latin_for_its_first_64_kb_is_read_as_windows_1251() -> None:
    latin = [[f"Company {n} Ltd", f"office{n}@example.com", "Moscow"] for n in range(2000)]
    cyrillic = [[f"ООО «Ромашка-{n}»", f"info{n}@x.ru", "г. Москва, ул. Ёлкина"] for n in range(5)]
    content = _csv([["Name", "E-mail", "City"], *latin, *cyrillic]).encode("cp1251")
    assert content[:65_536].isascii()
    table = open_table(io.BytesIO(content), "o.csv")
    assert table.encoding == "Windows-1251"
    rows = list(table.rows)
    assert rows[-1] == ["ООО «Ромашка-4»", "info4@x.ru", "г. Москва, ул. Ёлкина"]


def test_a_byte_windows_1251_lacks_is_named_by_its_line() -> None:
    lines = _generated(4000).encode("cp1251").split(b"\r\n")
    lines[3001] += b" \x98"  # the one byte Windows-1251 leaves undefined
    with pytest.raises(TabularError) as caught:
        list(read_rows(io.BytesIO(b"\r\n".join(lines)), "base.csv"))
    assert str(caught.value).startswith("line 3002 is neither UTF-8 nor Windows-1251 text")


def test_lines_are_an_editors_even_with_quoted_line_breaks() -> None:
    rows = [["Наименование", "Примечание"], *([f"Фирма {n}", "две\nстроки"] for n in range(1500))]
    content = _csv(rows).encode() + "Фирма;".encode() + b"\xff\r\n"
    # every record but the header takes two lines: the bad one is line 1 + 2 * 1500 + 1
    with pytest.raises(TabularError, match=r"^line 3002 is not UTF-8"):
        list(read_rows(io.BytesIO(content), "o.csv"))


def test_koi8_r_is_told_from_windows_1251() -> None:
    text = _generated(200)
    content = text.replace("«", '"').replace("»", '"').encode("koi8_r")
    table = open_table(io.BytesIO(content), "base.csv")
    assert table.encoding == "KOI8-R"
    assert next(table.rows)[0] == "Наименование"


def test_detect_leaves_the_file_at_its_start() -> None:
    file = io.BytesIO("Имя\r\nБ\r\n".encode("cp1251"))
    assert charsets.detect(file).codec == "cp1251"
    assert file.tell() == 0


def test_a_stray_byte_in_a_utf8_file_with_lone_cr_line_ends_is_refused_too() -> None:
    content = _generated(300).replace("\r\n", "\r").encode() + b"\xe9t\xe9\r"
    with pytest.raises(TabularError, match=r"^line 1 is not UTF-8 text"):
        list(read_rows(io.BytesIO(content), "mac.csv"))


# --- UTF-16: Excel's «Unicode text» (ADR 58) ----------------------------------------------


def _unicode_text(rows: int) -> str:
    """A generated file as Excel saves it as «Unicode text»: tab separated, CRLF line ends."""
    file = generate(rows)
    out = io.StringIO()
    csv.writer(out, delimiter="\t", lineterminator="\r\n").writerows(
        [["" if cell is None else cell for cell in row] for row in [file.header, *file.rows]]
    )
    return out.getvalue()


@pytest.mark.parametrize(
    ("content", "name"),
    [
        (codecs.BOM_UTF16_LE + _unicode_text(300).encode("utf-16-le"), "UTF-16 LE"),
        (codecs.BOM_UTF16_BE + _unicode_text(300).encode("utf-16-be"), "UTF-16 BE"),
        (_unicode_text(300).encode("utf-16-le"), "UTF-16 LE"),  # no BOM
        (_unicode_text(300).encode("utf-16-be"), "UTF-16 BE"),
    ],
)
def test_excel_unicode_text_is_read_as_utf16(content: bytes, name: str) -> None:
    table = open_table(io.BytesIO(content), "base.txt")
    assert table.encoding == name
    rows = list(table.rows)
    assert rows == list(read_rows(io.BytesIO(_generated(300).encode()), "base.csv"))
    assert last_row(io.BytesIO(content), "base.txt") == 301


def test_utf16_reads_quoted_line_breaks_and_characters_beyond_the_bmp() -> None:
    text = (
        'Наименование\tПримечание\r\n"ООО «Альфа»"\t"две\nстроки, ""в кавычках"""\r\nБета 😀\t\r\n'
    )
    content = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    assert list(read_rows(io.BytesIO(content), "o.txt")) == [
        ["Наименование", "Примечание"],
        ["ООО «Альфа»", 'две\nстроки, "в кавычках"'],
        ["Бета 😀", None],
    ]
    assert last_row(io.BytesIO(content), "o.txt") == 3


def test_a_pair_of_surrogates_across_blocks_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(charsets, "_UTF16_BLOCK", 5)  # odd, so pairs and halves straddle blocks
    text = "Наименование\r\n" + "".join(f"Фирма 😀{n} 𝔄\r\n" for n in range(50))
    content = codecs.BOM_UTF16_LE + text.encode("utf-16-le")
    assert charsets.detect(io.BytesIO(content)).name == "UTF-16 LE"


def test_a_broken_character_in_a_utf16_file_is_refused_naming_its_line() -> None:
    lines = _unicode_text(5000).split("\r\n")
    data = [codecs.BOM_UTF16_LE] + [line.encode("utf-16-le") for line in lines]
    data[4800] = data[4800][:4] + b"\x00\xdc" + data[4800][4:]  # a lone low surrogate
    content = "\r\n".encode("utf-16-le").join(data[1:])
    with pytest.raises(TabularError) as caught:
        list(read_rows(io.BytesIO(data[0] + content), "base.txt"))
    assert str(caught.value).startswith(
        "line 4800 is not UTF-16 text (a broken character at character 3), while the rest of "
        "the file is UTF-16 LE"
    )
    assert len(b"".join(data[:4800])) > 1 << 20  # past the first block: lines counted across


def test_a_utf16_file_cut_in_half_a_character_is_refused() -> None:
    content = codecs.BOM_UTF16_LE + _unicode_text(20).encode("utf-16-le")[:-1]
    with pytest.raises(TabularError, match=r"^line 21 ends in half a character: the UTF-16 LE"):
        list(read_rows(io.BytesIO(content), "base.txt"))


def test_a_binary_file_with_nul_bytes_is_still_refused() -> None:
    content = bytes(range(256)) * 10
    with pytest.raises(TabularError, match="it has NUL bytes"):
        list(read_rows(io.BytesIO(content), "x.csv"))
