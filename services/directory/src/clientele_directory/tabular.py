"""Reading and writing spreadsheets a row at a time: .xlsx (openpyxl read-only / write-only)
and CSV (UTF-8, with a BOM when written so Excel keeps Cyrillic; cp1251 is read too).

Nothing here holds a whole file's rows in memory: readers yield rows, the .xlsx writer streams
into a temporary file that spills to disk.
"""

from __future__ import annotations

import codecs
import csv
import io
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from datetime import date, datetime, time
from decimal import Decimal
from typing import IO, Any

from openpyxl import Workbook, load_workbook
from openpyxl.utils.exceptions import InvalidFileException

XLSX_MEDIA_TYPE = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
CSV_MEDIA_TYPE = "text/csv; charset=utf-8"
MAX_COLUMNS = 200
MAX_CELL_CHARS = 32_767  # what Excel keeps in a cell
_SNIFF_BYTES = 65_536


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


def _xlsx_rows(file: IO[bytes]) -> Iterator[list[str | None]]:
    try:
        workbook = load_workbook(file, read_only=True, data_only=True)
    except (zipfile.BadZipFile, InvalidFileException, KeyError, OSError, ValueError) as exc:
        raise TabularError(f"not a readable .xlsx file ({exc.__class__.__name__})") from None
    try:
        sheet = workbook.worksheets[0] if workbook.worksheets else None
        if sheet is None:
            raise TabularError("the workbook has no sheet")
        try:
            for row in sheet.iter_rows(values_only=True):
                if len(row) > MAX_COLUMNS:
                    row = row[:MAX_COLUMNS]
                yield [_cell(value) for value in row]
        except (zipfile.BadZipFile, KeyError, OSError, ValueError, TypeError) as exc:
            raise TabularError(f"the .xlsx file is damaged ({exc.__class__.__name__})") from None
    finally:
        workbook.close()


def _encoding(sample: bytes) -> str:
    if sample.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    try:
        sample.decode("utf-8")
    except UnicodeDecodeError as exc:
        if exc.start < len(sample) - 3:  # not just a character cut at the sample's end
            return "cp1251"
    return "utf-8"


def _csv_rows(file: IO[bytes]) -> Iterator[list[str | None]]:
    sample = file.read(_SNIFF_BYTES)
    file.seek(0)
    if b"\x00" in sample:
        raise TabularError("not a text (CSV) file: it has NUL bytes")
    encoding = _encoding(sample)
    first_line = sample.split(b"\n", 1)[0].decode(encoding, errors="replace")
    delimiter = max(";,\t|", key=first_line.count)
    text = io.TextIOWrapper(file, encoding=encoding, newline="")
    reader = csv.reader(text, delimiter=delimiter)
    try:
        for row in reader:
            yield [_cell(value) for value in row[:MAX_COLUMNS]]
    except UnicodeDecodeError:
        raise TabularError(
            f"line {reader.line_num + 1} is not {encoding} text; save the file as UTF-8"
        ) from None
    except csv.Error as exc:
        raise TabularError(f"line {reader.line_num}: {exc}") from None
    finally:
        text.detach()


def read_rows(file: IO[bytes], filename: str | None) -> Iterator[list[str | None]]:
    """The rows of an uploaded .xlsx or CSV file, the header first (TabularError when it is
    neither, or damaged). The format is told by the content, not the name."""
    head = file.read(8)
    file.seek(0)
    name = (filename or "").lower()
    if head.startswith(b"\xd0\xcf\x11\xe0"):
        raise TabularError("Excel 97-2003 (.xls) files are not read; save it as .xlsx")
    if head.startswith(b"PK\x03\x04"):
        return _xlsx_rows(file)
    if name.endswith((".xlsx", ".xlsm")):
        raise TabularError("not a readable .xlsx file (it is not a ZIP package)")
    if not head:
        raise TabularError("the file is empty")
    return _csv_rows(file)


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


def csv_chunks(header: list[str], rows: Iterable[list[Any]]) -> Iterator[bytes]:
    """CSV for Excel: UTF-8 with a BOM, ``;`` separated (what Excel expects in Russian
    locales), CRLF line ends; yields a chunk per row."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter=";", lineterminator="\r\n")
    writer.writerow(header)
    yield codecs.BOM_UTF8 + buffer.getvalue().encode()
    for row in rows:
        buffer.seek(0)
        buffer.truncate()
        writer.writerow(["" if v is None else _safe_text(_out(v)) for v in row])
        yield buffer.getvalue().encode()


class XlsxStream:
    """An .xlsx written a row at a time with openpyxl's write-only mode (rows go to a temporary
    file, not to memory); ``finish`` packs it into a spooled temporary file, rewound."""

    def __init__(self, header: list[str], title: str) -> None:
        self.workbook = Workbook(write_only=True)
        self.sheet = self.workbook.create_sheet(title=_sheet_title(title))
        self.sheet.append(header)

    def append(self, row: list[Any]) -> None:
        self.sheet.append([_safe_text(_out(value)) for value in row])

    def finish(self) -> IO[bytes]:
        spool = tempfile.SpooledTemporaryFile(max_size=8 * 1024 * 1024)  # noqa: SIM115
        self.workbook.save(spool)
        spool.seek(0)
        return spool


def _sheet_title(title: str) -> str:
    cleaned = "".join(" " if c in "[]:*?/\\" else c for c in title).strip()
    return cleaned[:31] or "Sheet"
