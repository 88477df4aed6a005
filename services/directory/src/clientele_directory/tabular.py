"""Reading and writing spreadsheets a row at a time: .xlsx (the worksheet's XML streamed, the
package read by openpyxl; written with openpyxl's write-only mode) and CSV (UTF-8, with a BOM
when written so Excel keeps Cyrillic; read in the encoding the whole file shows, ADR 43).

Nothing here holds a whole file's rows in memory: readers yield rows, the .xlsx writer streams
into a temporary file that spills to disk.
"""

from __future__ import annotations

import codecs
import csv
import io
import re
import tempfile
import zipfile
from collections.abc import Generator, Iterable, Iterator
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any
from xml.etree.ElementTree import ParseError

from openpyxl import Workbook
from openpyxl.cell import WriteOnlyCell
from openpyxl.cell.cell import Cell
from openpyxl.reader.excel import ExcelReader
from openpyxl.styles.stylesheet import Stylesheet
from openpyxl.utils.cell import column_index_from_string
from openpyxl.utils.datetime import from_excel, from_ISO8601
from openpyxl.utils.exceptions import InvalidFileException
from openpyxl.xml.constants import ARC_STYLE, SHARED_STRINGS, SHEET_MAIN_NS
from openpyxl.xml.functions import fromstring, iterparse

from clientele_directory import charsets

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
CSV_CP1251_MEDIA_TYPE = "text/csv; charset=windows-1251"
MAX_COLUMNS = 200
MAX_CELL_CHARS = 32_767  # what Excel keeps in a cell
MAX_ROW_NUMBER = 1_048_576  # a worksheet's last row
MAX_INFLATE_RATIO = 100
"""A part of an .xlsx package may unpack to at most 100 times its packed size (Apache POI's
ZipSecureFile default): beyond it is a zip bomb, refused before it is inflated."""
MAX_UNPACKED_BYTES = 1 << 30
"""What all parts of one .xlsx package may unpack to together."""
MAX_SHARED_STRINGS_CHARS = 128_000_000
"""The shared strings of a workbook, all together (they are held in memory while it is read)."""
MAX_SHARED_STRINGS_BYTES = 256 << 20
"""What the shared strings may take in memory, estimated per string (its characters and the
object around it): a package of tiny strings (``<si/>`` by the million) is refused at this
size instead of driving a reader to gigabytes."""
_STRING_OVERHEAD = 64
_ROW_TAG = re.compile(rb"<(?:[A-Za-z_][\w.-]*:)?row(?=[\s/>])([^>]*)>")
_ROW_NUMBER = re.compile(rb"""\br\s*=\s*["']\s*([0-9.eE+]+)""")
_RATIO_FROM_BYTES = 1 << 20
_SNIFF_BYTES = 65_536
_QUOTED = re.compile(r'"(?:[^"]|"")*"')


class TabularError(ValueError):
    """A file that cannot be read as a table (with what is wrong, for a 422 problem)."""


def _cell(value: Any) -> str | None:
    """A cell as text (None when empty). Whole floats lose their ``.0`` (an INN typed as a
    number stays an INN); dates become ISO dates."""
    if value is None:
        return None
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        if value.is_integer() and abs(value) < 1e16:
            return str(int(value))
        return repr(value)
    if isinstance(value, datetime):
        return value.date().isoformat() if value.time() == time() else value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    text = str(value).strip()
    return text or None


_MAIN = f"{{{SHEET_MAIN_NS}}}"
_ROW, _CELL, _VALUE = f"{_MAIN}row", f"{_MAIN}c", f"{_MAIN}v"
_INLINE, _TEXT, _RUN, _PHONETIC = f"{_MAIN}is", f"{_MAIN}t", f"{_MAIN}r", f"{_MAIN}rPh"
_STRING_ITEM, _SHEET_DATA = f"{_MAIN}si", f"{_MAIN}sheetData"
_COLUMN = re.compile(r"[A-Z]+")


class _Workbook:
    """What reading a worksheet's values needs: its part, the shared strings, which styles are
    dates and the date epoch (openpyxl reads the package, styles and workbook)."""

    def __init__(self, file: IO[bytes], sheet: int) -> None:
        reader = ExcelReader(file, read_only=True, data_only=True)
        self.archive = reader.archive
        _check_inflation(self.archive)
        reader.read_manifest()
        reader.read_workbook()
        self.epoch = reader.wb.epoch
        sheets = _sheets(reader)
        self.name: str | None = None
        self.sheet: str | None = None
        if sheet < len(sheets):
            self.name, self.sheet = sheets[sheet]
        self.date_formats: set[int] = set()
        self.timedelta_formats: set[int] = set()
        if ARC_STYLE in reader.valid_files:
            styles = Stylesheet.from_tree(fromstring(self.archive.read(ARC_STYLE)))
            self.date_formats, self.timedelta_formats = (
                styles.date_formats,
                styles.timedelta_formats,
            )
        self.strings: list[str] = []
        part = reader.package.find(SHARED_STRINGS)
        if part is not None:
            with self.archive.open(part.PartName[1:]) as source:
                self.strings = _shared_strings(source)


def _sheets(reader: ExcelReader) -> list[tuple[str, str]]:
    """``(name, part)`` of the workbook's worksheets, in the workbook's order."""
    return [
        (sheet.name, rel.target)
        for sheet, rel in reader.parser.find_sheets()
        if rel.target in reader.valid_files and "chartsheet" not in rel.Type
    ]


def _check_inflation(archive: zipfile.ZipFile) -> None:
    """Refuse a package whose parts would unpack to far more than they weigh (TabularError).
    The sizes are the package's own; a part cannot unpack beyond its declared size (zipfile
    stops there), so checking them bounds the work."""
    total = 0
    for info in archive.infolist():
        total += info.file_size
        if info.file_size > _RATIO_FROM_BYTES and (
            info.file_size > MAX_INFLATE_RATIO * max(info.compress_size, 1)
        ):
            raise TabularError(
                f"the .xlsx file unpacks to more than {MAX_INFLATE_RATIO} times its size "
                "(a zip bomb?)"
            )
    if total > MAX_UNPACKED_BYTES:
        raise TabularError(f"the .xlsx file unpacks to more than {MAX_UNPACKED_BYTES >> 20} MiB")


def _text_of(node: Any) -> str:
    """The text of a string item: its ``t`` and its runs' (phonetic hints left out)."""
    plain = node.find(_TEXT)
    runs = [run.findtext(_TEXT) or "" for run in node.iter(_RUN)]
    return "".join([plain.text or "", *runs] if plain is not None else runs)


def _shared_strings(source: IO[bytes]) -> list[str]:
    """The workbook's shared strings; TabularError beyond MAX_SHARED_STRINGS_CHARS characters
    or MAX_SHARED_STRINGS_BYTES of memory. Each item is dropped from the parsed tree once read
    (the tree would otherwise keep an element per string)."""
    strings = []
    chars = weight = 0
    root = None
    for event, node in iterparse(source, events=("start", "end")):
        if event == "start":
            if root is None:
                root = node
            continue
        if node.tag == _STRING_ITEM:
            text = _text_of(node).replace("x005F_", "")
            strings.append(text)
            chars += len(text)
            weight += 2 * len(text) + _STRING_OVERHEAD
            if chars > MAX_SHARED_STRINGS_CHARS:
                raise TabularError(
                    f"the .xlsx file's texts hold more than {MAX_SHARED_STRINGS_CHARS:,} characters"
                )
            if weight > MAX_SHARED_STRINGS_BYTES:
                raise TabularError(
                    f"the .xlsx file's shared texts would take more than "
                    f"{MAX_SHARED_STRINGS_BYTES >> 20} MiB of memory"
                )
            if root is not None:
                root.clear()
    return strings


def _value(book: _Workbook, cell: Any) -> Any:
    """A cell's value as openpyxl's read-only, data-only mode gives it."""
    kind = cell.get("t", "n")
    if kind == "inlineStr":
        node = cell.find(_INLINE)
        return None if node is None else _text_of(node)
    raw = cell.findtext(_VALUE) or None
    if raw is None:
        return None
    if kind == "n":
        number: float = float(raw) if "." in raw or "E" in raw or "e" in raw else int(raw)
        style = int(cell.get("s", 0))
        if style in book.date_formats:
            try:
                return from_excel(number, book.epoch, timedelta=style in book.timedelta_formats)
            except (OverflowError, ValueError):
                return "#VALUE!"
        return number
    if kind == "s":
        return book.strings[int(raw)]
    if kind == "b":
        return bool(int(raw))
    if kind == "d":
        return from_ISO8601(raw)
    return raw  # "str" (a formula's text) and "e" (an error such as #N/A)


def _column(reference: str) -> int:
    """The 0-based column of a cell reference such as ``AB12``."""
    letters = _COLUMN.match(reference)
    if letters is None:
        raise ValueError(f"not a cell reference: {reference}")
    return int(column_index_from_string(letters.group())) - 1


def _open_book(file: IO[bytes], sheet: int) -> _Workbook:
    try:
        return _Workbook(file, sheet)
    except TabularError:
        raise
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise TabularError(f"not a readable .xlsx file ({exc.__class__.__name__})") from None
    except ParseError:  # malformed XML, an entity bomb or an external entity
        raise TabularError("not a readable .xlsx file (its XML cannot be read)") from None


def _xlsx_rows(book: _Workbook) -> Generator[list[str | None], None, None]:
    """A worksheet's rows as text, streamed from its XML (a missing row comes as an empty one,
    so row numbers stay Excel's). The values are openpyxl's; reading them here instead of
    through its read-only worksheet is several times faster."""
    try:
        if book.sheet is None:
            raise TabularError("the workbook has no sheet")
        number = 0
        with book.archive.open(book.sheet) as source:
            data = None
            for event, node in iterparse(source, events=("start", "end")):
                if event == "start":
                    if node.tag == _SHEET_DATA:
                        data = node
                    continue
                if node.tag != _ROW:
                    continue
                at = node.get("r")
                row_number = int(float(at)) if at else number + 1
                if row_number > MAX_ROW_NUMBER:
                    raise TabularError(f"row {row_number} is beyond a worksheet's last row")
                while number + 1 < row_number:  # rows the file leaves out
                    number += 1
                    yield []
                number = row_number
                values: list[str | None] = []
                column = -1
                for cell in node:
                    if cell.tag != _CELL:
                        continue
                    reference = cell.get("r")
                    column = _column(reference) if reference else column + 1
                    if column >= MAX_COLUMNS:
                        break
                    values.extend([None] * (column - len(values)))
                    values.append(_cell(_value(book, cell)))
                if data is not None:
                    data.clear()  # the rows read so far are not kept
                yield values
    except TabularError:
        raise
    except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError, IndexError) as exc:
        raise TabularError(f"the .xlsx file is damaged ({exc.__class__.__name__})") from None
    except ParseError:
        raise TabularError("the .xlsx file is damaged (its XML cannot be read)") from None
    finally:
        book.archive.close()


def _delimiter(head: str) -> str:
    """The separator of a CSV file: the one a line of its first ones holds most of outside
    quoted values (a title line above the header may hold none, an address a few commas)."""
    lines = _QUOTED.sub("", head).splitlines()[:20] or [""]
    return max(";,\t|", key=lambda c: max(line.count(c) for line in lines))


def _csv_rows(file: IO[bytes], encoding: str) -> Generator[list[str | None], None, None]:
    """The records of a CSV file in an encoding that decodes all of it (charsets.detect)."""
    head = file.read(_SNIFF_BYTES).decode(encoding, errors="replace")
    file.seek(0)
    text = io.TextIOWrapper(file, encoding=encoding, newline="")
    reader = csv.reader(text, delimiter=_delimiter(head))
    try:
        for row in reader:
            yield [_cell(value) for value in row[:MAX_COLUMNS]]
    except csv.Error as exc:
        raise TabularError(f"line {reader.line_num}: {exc}") from None
    finally:
        text.detach()


def _xlsx_last_row(file: IO[bytes], index: int) -> int:
    """A worksheet's last row number, from a scan of its XML for row tags (the rows it leaves
    out and blank ones count): no cell is read, no shared string loaded."""
    try:
        reader = ExcelReader(file, read_only=True, data_only=True)
        _check_inflation(reader.archive)
        reader.read_manifest()
        reader.read_workbook()
        sheets = _sheets(reader)
        if index >= len(sheets):
            return 0
        sheet = sheets[index][1]
        last = 0
        tail = b""
        with reader.archive.open(sheet) as source:
            while block := source.read(1 << 20):
                data = tail + block
                end = 0
                for match in _ROW_TAG.finditer(data):
                    end = match.end()
                    number = _ROW_NUMBER.search(match.group(1))
                    try:
                        at = int(float(number.group(1))) if number else last + 1
                    except (ValueError, OverflowError):
                        at = last + 1
                    last = max(last, at)
                    if last > MAX_ROW_NUMBER:
                        raise TabularError(f"row {last} is beyond a worksheet's last row")
                tail = data[max(end, len(data) - 4096) :]
        reader.archive.close()
        return last
    except TabularError:
        raise
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise TabularError(f"not a readable .xlsx file ({exc.__class__.__name__})") from None
    except ParseError:
        raise TabularError("not a readable .xlsx file (its XML cannot be read)") from None


def _csv_last_row(file: IO[bytes], encoding: str) -> int:
    """The number of records of a CSV file (blank lines count), read once with the csv module.
    A file of one byte a character is read as Latin-1: quotes, separators and line ends are
    ASCII in every such encoding, so the count is the same; a UTF-16 file in UTF-16 (a broken
    character replaced: the reading pass refuses it). The reading pass tells the encoding."""
    head = file.read(_SNIFF_BYTES).decode(encoding, errors="replace")
    file.seek(0)
    text = io.TextIOWrapper(file, encoding=encoding, errors="replace", newline="")
    try:
        return sum(1 for _ in csv.reader(text, delimiter=_delimiter(head)))
    except csv.Error:
        return 0  # the reading pass names the line
    finally:
        text.detach()
        file.seek(0)


def last_row(file: IO[bytes], filename: str | None, sheet: int = 0) -> int:
    """How many rows the file (an .xlsx file's worksheet ``sheet``, counted from 0) has, the
    header and blank rows included (an .xlsx counts to its last row number): what the row
    limits are checked against before any row is read."""
    head = file.read(8)
    file.seek(0)
    try:
        if head.startswith(b"PK\x03\x04"):
            return _xlsx_last_row(file, sheet)
        if not head or head.startswith(b"\xd0\xcf\x11\xe0"):
            return 0  # refused by read_rows with its reason
        wide = charsets.utf16(file)
        if wide is None and b"\x00" in file.read(_SNIFF_BYTES):
            return 0
        file.seek(0)
        return _csv_last_row(file, "latin-1" if wide is None else wide.codec)
    finally:
        file.seek(0)


@dataclass
class Table:
    """An uploaded file's rows (the header first) and where they were read from."""

    rows: Generator[list[str | None], None, None]
    sheet: str | None = None
    """The worksheet of an .xlsx file."""
    index: int = 0
    """The worksheet's place in the workbook, from 0."""
    encoding: str | None = None
    """The encoding a CSV file was read in (charsets.Detected.name)."""


def sheet_count(file: IO[bytes]) -> int:
    """How many worksheets an .xlsx file has (1 for any other file, or an unreadable one: the
    reading tells why)."""
    if file.read(4) != b"PK\x03\x04":
        file.seek(0)
        return 1
    file.seek(0)
    try:
        reader = ExcelReader(file, read_only=True, data_only=True)
        _check_inflation(reader.archive)
        reader.read_manifest()
        reader.read_workbook()
        count = len(_sheets(reader))
        reader.archive.close()
        return max(count, 1)
    except (TabularError, zipfile.BadZipFile, InvalidFileException, KeyError, OSError):
        return 1
    except (ValueError, ParseError):  # damaged: the reading names it
        return 1
    finally:
        file.seek(0)


def open_table(file: IO[bytes], filename: str | None, sheet: int = 0) -> Table:
    """The rows of an uploaded .xlsx (its worksheet ``sheet``, from 0) or CSV file
    (TabularError when it is neither, damaged, or a text in no one encoding). The format is
    told by the content, not the name."""
    head = file.read(8)
    file.seek(0)
    name = (filename or "").lower()
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise TabularError("Excel 97-2003 (.xls) files are not read; save it as .xlsx")
    if head.startswith(b"PK\x03\x04"):
        book = _open_book(file, sheet)
        return Table(_xlsx_rows(book), sheet=book.name, index=sheet)
    if name.endswith((".xlsx", ".xlsm")):
        raise TabularError("not a readable .xlsx file (it is not a ZIP package)")
    if not head:
        raise TabularError("the file is empty")
    if charsets.utf16(file) is None and b"\x00" in file.read(_SNIFF_BYTES):
        raise TabularError("not a text (CSV) file: it has NUL bytes")
    file.seek(0)
    try:
        detected = charsets.detect(file)
    except charsets.EncodingError as exc:
        raise TabularError(str(exc)) from None
    return Table(_csv_rows(file, detected.codec), encoding=detected.name)


def read_rows(file: IO[bytes], filename: str | None) -> Iterator[list[str | None]]:
    """The rows of an uploaded .xlsx or CSV file, the header first (see open_table)."""
    return open_table(file, filename).rows


# --- writing ---------------------------------------------------------------------------------


def _out(value: Any) -> Any:
    if value is None:
        return None
    if isinstance(value, list | tuple):
        return "; ".join(str(_out(item)) for item in value)
    if isinstance(value, dict):
        if set(value) == {"amount", "currency"}:
            return f"{value['amount']} {value['currency']}"
        if "text" in value:
            return value["text"]
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.replace(tzinfo=None) if value.tzinfo else value
    return value


def _safe_text(value: Any) -> Any:
    """Text that a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``) is quoted
    with an apostrophe (CSV injection)."""
    if isinstance(value, str):
        if value[:1] in ("=", "+", "-", "@", "\t", "\r") and not _is_number(value):
            value = "'" + value
        return value[:MAX_CELL_CHARS]
    return value


def _is_number(text: str) -> bool:
    try:
        float(text.replace(" ", ""))
    except ValueError:
        return False
    return True


def csv_chunks(
    header: list[str], rows: Iterable[list[Any]], encoding: str = "utf-8"
) -> Iterator[bytes]:
    """CSV for Excel: UTF-8 with a BOM (or ``cp1251``, without), ``;`` separated (what Excel
    expects in Russian locales), CRLF line ends; yields a chunk per row. A character cp1251
    lacks becomes ``?`` (the export checks there is none before it starts)."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    bom = codecs.BOM_UTF8 if encoding == "utf-8" else b""
    yield bom + buffer.getvalue().encode(encoding, errors="replace")
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(["" if v is None else _safe_text(_out(v)) for v in row])
        yield buffer.getvalue().encode(encoding, errors="replace")


TEXT_FORMAT = "@"
"""Excel's text number format: what a person types into the cell stays text."""


class XlsxStream:
    """An .xlsx written a row at a time with openpyxl's write-only mode (rows go to a temporary
    file, not to memory); ``finish`` packs it into a spooled temporary file, rewound. The
    ``text_columns`` (by index) are text cells in the text format, whatever they hold."""

    def __init__(self, header: list[str], title: str, text_columns: Iterable[int] = ()) -> None:
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(title=_sheet_title(title))
        self.sheet.append(header)
        self.text_columns = frozenset(text_columns)

    def _text(self, value: Any) -> Cell:
        """A text cell: stored as a string, never as a formula, so it needs no guard."""
        cell = WriteOnlyCell(self.sheet)
        if value is not None:
            cell.value = str(value)[:MAX_CELL_CHARS]
            cell.data_type = "s"
        cell.number_format = TEXT_FORMAT
        return cell

    def append(self, row: list[Any]) -> None:
        self.sheet.append(
            [
                self._text(_out(value)) if index in self.text_columns else _safe_text(_out(value))
                for index, value in enumerate(row)
            ]
        )

    def finish(self) -> IO[bytes]:
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self.workbook.save(spool)
        spool.seek(0)
        return spool


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if c in "[]:*?/\\" else c for c in title).strip()
    return cleaned[:31] or "Sheet"
