"""Reading .xlsx files without infrastructure: the streamed reader gives openpyxl's values
(shared and inline strings, rich text, numbers, dates and times, booleans, formulas' cached
values, errors, cells and rows the file leaves out) and refuses what is not a workbook."""

from __future__ import annotations

import datetime as dt
import io

import pytest
from clientele_directory import tabular
from clientele_directory.tabular import TabularError, _cell, last_row, read_rows
from openpyxl import Workbook, load_workbook
from openpyxl.cell.rich_text import CellRichText, TextBlock
from openpyxl.cell.text import InlineFont

from tests.security import hostile_files


def _openpyxl_rows(content: bytes) -> list[list[str | None]]:
    workbook = load_workbook(io.BytesIO(content), read_only=True, data_only=True)
    return [[_cell(v) for v in row] for row in workbook.worksheets[0].iter_rows(values_only=True)]


def _padded(rows: list[list[str | None]], width: int = 12) -> list[list[str | None]]:
    return [row + [None] * (width - len(row)) for row in rows]


def _workbook(write_only: bool) -> bytes:
    workbook = Workbook(write_only=write_only)
    sheet = workbook.create_sheet("Данные") if write_only else workbook.active
    assert sheet is not None
    rows: list[list[object]] = [
        ["Наименование", "ИНН", "Дата", "Сумма", "Флаг", None, "Формула"],
        ["ООО «Ёлка»", 7707083893, dt.date(2024, 3, 1), 1.5, True, None, "=1+1"],
        [None, "007", dt.datetime(2024, 3, 1, 12, 30), 1e20, False, "x"],
        [],
        [123456789012345, dt.time(10, 15), "=NA()", "  пробелы  "],
    ]
    for row in rows:
        sheet.append(row)
    if not write_only:
        sheet["A7"] = CellRichText(["Жирный ", TextBlock(InlineFont(b=True), "текст")])
        sheet["J9"] = "далеко"
    out = io.BytesIO()
    workbook.save(out)
    return out.getvalue()


@pytest.mark.parametrize("write_only", [False, True], ids=["shared strings", "inline strings"])
def test_xlsx_rows_are_openpyxls_values(write_only: bool) -> None:
    content = _workbook(write_only)
    rows = list(read_rows(io.BytesIO(content), "orgs.xlsx"))
    assert _padded(rows) == _padded(_openpyxl_rows(content))
    assert rows[1][:5] == ["ООО «Ёлка»", "7707083893", "2024-03-01", "1.5", "true"]
    assert rows[4][:4] == ["123456789012345", "10:15:00", None, "пробелы"]


def test_rows_the_file_leaves_out_keep_excel_numbers() -> None:
    rows = list(read_rows(io.BytesIO(_workbook(write_only=False)), "orgs.xlsx"))
    assert len(rows) == 9
    assert rows[6][0] == "Жирный текст"  # row 7
    assert rows[7] == []  # row 8 is not in the file
    assert rows[8][9] == "далеко"


def test_what_is_not_a_workbook_is_refused() -> None:
    with pytest.raises(TabularError, match=r"not a readable \.xlsx"):
        list(read_rows(io.BytesIO(b"PK\x03\x04 not really a zip"), "x.xlsx"))
    content = _workbook(write_only=False)
    with pytest.raises(TabularError):
        list(read_rows(io.BytesIO(content[: len(content) // 2]), "x.xlsx"))


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("zip-bomb.xlsx", "zip bomb"),
        ("shared-strings-bomb.xlsx", "zip bomb"),
        ("shared-string-huge.xlsx", "zip bomb"),
        ("huge-row-number.xlsx", "beyond a worksheet's last row"),
        ("billion-laughs.xlsx", "XML cannot be read"),
        ("external-entity.xlsx", "XML cannot be read"),
    ],
)
def test_hostile_workbooks_are_refused_before_they_cost(name: str, expected: str) -> None:
    """Bombs are refused from the package's sizes before anything is inflated; an entity bomb
    or an external entity is a broken file, not a server error."""
    samples = dict(hostile_files.spreadsheets())
    with pytest.raises(TabularError, match=expected):
        list(read_rows(io.BytesIO(samples[name]), name))


def test_the_rows_are_counted_with_blank_rows_and_the_numbers_a_sheet_gives_them() -> None:
    far = hostile_files.xlsx(
        hostile_files._sheet([b'<row r="2"/>', b'<x:row r="7"><c r="A7"><v>1</v></c></x:row>'])
    )
    assert last_row(io.BytesIO(far), "f.xlsx") == 7
    unnumbered = hostile_files.xlsx(hostile_files._sheet([b"<row/>", b"<row ></row>"]))
    assert last_row(io.BytesIO(unnumbered), "u.xlsx") == 3  # the header row and two more
    csv = "Наименование\r\nА\r\n\r\n\r\n".encode()
    assert last_row(io.BytesIO(csv), "c.csv") == 4
    assert last_row(io.BytesIO(b'a\r\n"two\r\nlines"\r\n'), "q.csv") == 2
    beyond = hostile_files.xlsx(hostile_files._sheet([b'<row r="50000000"/>']))
    with pytest.raises(TabularError, match="beyond a worksheet's last row"):
        last_row(io.BytesIO(beyond), "b.xlsx")


def test_shared_strings_are_bounded_by_their_memory(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(tabular, "MAX_SHARED_STRINGS_BYTES", 64 * 1000)
    many = hostile_files.xlsx(
        hostile_files._sheet([b'<row r="2"><c r="A2" t="s"><v>0</v></c></row>']),
        hostile_files._strings(f"<si><t>{n}</t></si>".encode() for n in range(2000)),
    )
    with pytest.raises(TabularError, match="shared texts would take more than"):
        list(read_rows(io.BytesIO(many), "m.xlsx"))
    monkeypatch.setattr(tabular, "MAX_SHARED_STRINGS_BYTES", 1 << 20)
    assert list(read_rows(io.BytesIO(many), "m.xlsx"))[1] == ["0"]


def test_text_columns_are_text_cells_never_formulas_and_read_back() -> None:
    stream = tabular.XlsxStream(["ИНН", "Телефоны", "Наименование"], "t", text_columns=[0, 1])
    stream.append(["007707083893", ["+74955005550 доб. 12"], "=1+1"])
    stream.append([None, "=SUM(A1)", "+7"])
    content = stream.finish().read()
    sheet = load_workbook(io.BytesIO(content)).worksheets[0]
    cells = [[(c.value, c.data_type, c.number_format) for c in row] for row in sheet.iter_rows()]
    assert cells[1][:2] == [("007707083893", "s", "@"), ("+74955005550 доб. 12", "s", "@")]
    assert cells[1][2] == ("'=1+1", "s", "General")  # the formula guard outside text columns
    assert cells[2][:2] == [(None, "n", "@"), ("=SUM(A1)", "s", "@")]
    assert list(read_rows(io.BytesIO(content), "t.xlsx"))[1] == [
        "007707083893",
        "+74955005550 доб. 12",
        "'=1+1",
    ]


def test_a_windows_1251_csv_has_no_bom_and_marks_what_it_cannot_hold() -> None:
    chunks = list(tabular.csv_chunks(["Наименование"], [["ООО «Ёлка»"], ["Café"]], "cp1251"))
    assert chunks[0] == "Наименование\r\n".encode("cp1251")
    assert b"".join(chunks[1:]).decode("cp1251") == "ООО «Ёлка»\r\nCaf?\r\n"
    assert next(iter(tabular.csv_chunks(["a"], [], "utf-8"))).startswith(b"\xef\xbb\xbf")
