"""Import rules (no I/O): which column is which field (headers in Russian or English,
overridable), and turning a row into an organization draft with its problems."""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import enum
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field
from pydantic import ValidationError as PydanticValidationError

from clientele_directory.imports.headers import STATUS_WORDS, normalize_header
from clientele_directory.organizations.rules import Organization, OrganizationDraft

LIST_FIELDS = frozenset({"phones", "emails", "sites", "categories", "tags", "directions"})
LABEL_FIELDS = frozenset({"categories", "tags"})
ADDRESS_FIELDS = frozenset({"legal_address", "actual_address", "postal_address"})


def split_list(text: str) -> list[str]:
    """Several values in one cell: separated by ``;``, ``,`` or new lines."""
    return [part.strip() for part in re.split(r"[;\n]|,(?=\s*\S)", text) if part.strip()]


def split_labels(text: str) -> list[str]:
    """Categories or tags in one cell: separated by ``;`` or new lines, never by ``,`` (a label
    may hold one); a label holding ``;`` is written in double quotes (as exports write it)."""
    lines = [line for line in text.splitlines() if line.strip()]
    rows = csv.reader(lines, delimiter=";", quotechar='"', skipinitialspace=True)
    return [label.strip() for row in rows for label in row if label.strip()]


def quote_labels(labels: Sequence[str]) -> list[str]:
    """Labels as an export writes them, so that split_labels reads them back: one holding ``;``
    or a leading ``"`` in double quotes (quotes inside doubled)."""
    return [
        '"' + label.replace('"', '""') + '"' if ";" in label or label.startswith('"') else label
        for label in labels
    ]


def split_sites(text: str) -> list[str]:
    """Sites in one cell: separated by spaces, ``;`` or ``,`` (``a.ru; b.ru`` is two sites)."""
    return [part for part in re.split(r"[\s;,]+", text) if part]


_PHONE_KIND = re.compile(r"\s*\[(work|mobile|fax|other)\]\s*$", re.IGNORECASE)
_INTERNAL = re.compile(r"\b(?:вн|внутр)\.?\s*(?=\d)", re.IGNORECASE)


def phone_value(text: str) -> str | dict[str, str]:
    """One phone of a cell: a trailing ``[mobile]``, ``[fax]``, ``[other]`` or ``[work]`` is its
    kind (as exports write it); ``вн. 12`` is read as the extension ``доб. 12``."""
    text = _INTERNAL.sub("доб. ", text)
    kind = _PHONE_KIND.search(text)
    if kind is None:
        return text
    return {"number": text[: kind.start()].strip(), "kind": kind.group(1).lower()}


def phone_cell(number: str, kind: str, extension: str | None) -> str:
    """A phone as an export writes it (read back by phone_value)."""
    return (
        number
        + (f" доб. {extension}" if extension else "")
        + (f" [{kind}]" if kind != "work" else "")
    )


_FORMULA_GUARD = ("'=", "'+", "'-", "'@")


def unguarded(value: str) -> str:
    """A cell without the apostrophe an export puts before ``=``, ``+``, ``-`` or ``@`` (the
    formula guard): exported text comes back as it was."""
    return value[1:] if value.startswith(_FORMULA_GUARD) else value


def _phones(text: str, kind: str | None) -> list[str | dict[str, str]]:
    """The phones of a cell; a column of mobile, fax or other phones gives them that kind."""
    phones = [phone_value(part) for part in split_list(text)]
    if kind is None:
        return phones
    return [{"number": p, "kind": kind} if isinstance(p, str) else p for p in phones]


def row_document(
    mapping: Mapping[int, str], row: Sequence[str | None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(organization fields, attribute values)`` of one row as raw values for validation:
    empty cells are left out, formula guards dropped, lists split (and put together when
    several columns give one), addresses wrapped, statuses read in either language; a
    responsible employee named, not given by id, is left as ``responsible`` (a name).
    """
    fields: dict[str, Any] = {}
    attributes: dict[str, Any] = {}
    for index, field in mapping.items():
        value = row[index] if index < len(row) else None
        if value is None:
            continue
        value = unguarded(value)
        if field.startswith("attributes."):
            attributes[field.removeprefix("attributes.")] = value
        elif field.startswith("phones"):
            kind = field.partition(".")[2] or None
            fields.setdefault("phones", []).extend(_phones(value, kind))
        elif field == "sites":
            fields.setdefault(field, []).extend(split_sites(value))
        elif field in LABEL_FIELDS:
            fields.setdefault(field, []).extend(split_labels(value))
        elif field in LIST_FIELDS:
            fields.setdefault(field, []).extend(split_list(value))
        elif field in ADDRESS_FIELDS:
            fields[field] = {"text": value}
        elif field == "status":
            fields[field] = STATUS_WORDS.get(normalize_header(value), value)
        elif field == "inn":
            fields[field] = re.sub(r"\s", "", value)
        elif field == "responsible_employee_id" and not _is_uuid(value):
            fields["responsible"] = value.strip()
        else:
            fields[field] = value
    return fields, attributes


def _is_uuid(text: str) -> bool:
    try:
        uuid.UUID(text.strip())
    except ValueError:
        return False
    return True


# --- rows as import candidates ---------------------------------------------------------------


class ImportMode(enum.StrEnum):
    DRY_RUN = "dry_run"
    ALL_OR_NOTHING = "all_or_nothing"
    VALID_ROWS = "valid_rows"


class ImportKind(enum.StrEnum):
    """What an import's rows become (ADR 63)."""

    ORGANIZATION = "organization"
    PERSON = "person"


class ListUpdate(enum.StrEnum):
    """What a row's lists do to an existing organization's."""

    MERGE = "merge"
    REPLACE = "replace"


class RowAction(enum.StrEnum):
    CREATED = "created"
    UPDATED = "updated"
    UNCHANGED = "unchanged"
    SKIPPED = "skipped"


class RowProblem(BaseModel):
    field: str | None = None
    message: str
    kind: str = "invalid"


class Candidate(BaseModel):
    """An existing organization whose name is close to the row's (for a person to review)."""

    organization_id: uuid.UUID
    legal_name: str
    similarity: float


class RowReport(BaseModel):
    row: int = Field(description="the row number in the file (the header is row 1)")
    action: RowAction
    organization_id: uuid.UUID | None = Field(
        default=None,
        description="the organization the row created or updated; in an import of persons, the"
        " organization the person was linked to",
    )
    person_id: uuid.UUID | None = Field(
        default=None, description="the person an import of persons created or updated"
    )
    matched_by: str | None = Field(default=None, description="id, inn, email or phone")
    errors: list[RowProblem] = Field(default_factory=list)
    warnings: list[RowProblem] = Field(default_factory=list)
    candidates: list[Candidate] = Field(default_factory=list)
    changes: dict[str, Any] | None = Field(
        default=None,
        description='an update\'s changes, per field {"old", "new"} (lists: the row\'s values'
        " added to the organization's unless the import replaces lists)",
    )


class ImportReport(BaseModel):
    mode: ImportMode
    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = 0
    report: list[RowReport] = Field(
        default_factory=list,
        description="per row in a dry run; in a real import the rows not simply created",
    )

    def count(self, row: RowReport) -> None:
        self.rows += 1
        setattr(self, row.action.value, getattr(self, row.action.value) + 1)


@dataclass
class ParsedRow:
    """One data row: the fields it gives (validated as a new organization would be), the raw
    custom attribute values, and what is wrong with it."""

    number: int
    given: set[str]
    draft: OrganizationDraft | None
    attributes: dict[str, Any]
    errors: list[RowProblem]
    cells: list[str | None] = dataclasses.field(default_factory=list)
    """The row as read (for the report of the rows that fail)."""
    id: uuid.UUID | None = None
    """The organization the row names by its id (an export's ``id`` column), matched first."""
    responsible: str | None = None
    """The responsible employee as the file names them (1C, Bitrix24 and amoCRM write a name),
    matched to an employee the importer sees."""

    @property
    def inn(self) -> str | None:
        return self.draft.inn if self.draft else None

    def emails(self) -> list[str]:
        """The row's e-mails as they are compared: lower case (``OFFICE@x.ru`` is
        ``office@x.ru``, as for persons)."""
        return [e.lower() for e in self.draft.emails] if self.draft else []

    def phones(self) -> list[str]:
        return [phone.number for phone in self.draft.phones] if self.draft else []


def row_problems(errors: Iterable[Any]) -> list[RowProblem]:
    """A validation's errors as a row's problems, naming each field (list positions left out)."""
    return [
        RowProblem(
            field=".".join(str(part) for part in error.get("loc", ()) if not isinstance(part, int))
            or None,
            message=str(error.get("msg", "invalid")),
            kind=str(error.get("type", "invalid")),
        )
        for error in errors
    ]


def parse_row(
    number: int,
    mapping: Mapping[int, str],
    row: Sequence[str | None],
    default_directions: Sequence[str],
) -> ParsedRow:
    """A row checked by the same rules as ``POST /v1/organizations`` (checksums, phones,
    e-mails, identifiers agreeing); directions default to the import's."""
    fields, attributes = row_document(mapping, row)
    org_id: uuid.UUID | None = None
    errors: list[RowProblem] = []
    named = fields.pop("id", None)
    if named is not None and not named.strip().isdigit():  # digits: Bitrix24's or amoCRM's id
        try:
            org_id = uuid.UUID(named.strip())
        except ValueError:
            errors.append(RowProblem(field="id", message="not an organization id", kind="uuid"))
    responsible = fields.pop("responsible", None)
    given = set(fields) | ({"responsible_employee_id"} if responsible else set())
    if "directions" not in fields:
        fields["directions"] = list(default_directions)
    try:
        draft = OrganizationDraft.model_validate(fields)
    except PydanticValidationError as exc:
        errors += row_problems(exc.errors(include_url=False))
        draft = None
    return ParsedRow(
        number,
        given,
        draft if not errors else None,
        attributes,
        errors,
        id=org_id,
        responsible=responsible,
    )


def _name_key(name: str) -> frozenset[str]:
    """A person's name as compared: its words in any order, any case, ё as е."""
    return frozenset(normalize_header(name).split())


class Staff:
    """The employees a responsible named in a file may be: by e-mail, or by name with its
    words in any order (a name with a patronymic the employee's record lacks matches too)."""

    def __init__(self, employees: Iterable[tuple[uuid.UUID, str, str]]) -> None:
        self.by_email: dict[str, uuid.UUID] = {}
        self.names: list[tuple[frozenset[str], uuid.UUID]] = []
        for employee_id, name, email in employees:
            self.by_email[email.casefold()] = employee_id
            self.names.append((_name_key(name), employee_id))

    def find(self, text: str) -> tuple[uuid.UUID | None, RowProblem | None]:
        """The employee a cell names, or the problem why none."""
        if (by_email := self.by_email.get(text.casefold())) is not None:
            return by_email, None
        key = _name_key(text)
        exact = {employee_id for name, employee_id in self.names if name == key}
        found = exact or {
            employee_id for name, employee_id in self.names if len(name) > 1 and name < key
        }
        if len(found) == 1:
            return found.pop(), None
        if found:
            return None, RowProblem(
                field="responsible_employee_id",
                kind="ambiguous",
                message=f"{len(found)} employees are named «{text}»: give the e-mail or the id",
            )
        return None, RowProblem(
            field="responsible_employee_id",
            kind="unknown_reference",
            message=f"no active employee named «{text}» that you may see",
        )


def is_blank(row: Sequence[str | None]) -> bool:
    return all(cell is None for cell in row)


def patch_of(parsed: ParsedRow) -> dict[str, Any]:
    """The fields an update takes from a row: those its cells give (validated values)."""
    assert parsed.draft is not None
    return parsed.draft.model_dump(mode="json", include=parsed.given)


IMPORT_MERGED_LISTS = ("phones", "emails", "sites", "categories", "tags")
"""List fields an import over an organization adds to (unless told to replace them)."""


def _united(field: str, current: list[Any], given: list[Any]) -> list[Any]:
    """The current values, then the given ones not among them (phones by number, e-mails and
    labels whatever their case)."""

    def key(value: Any) -> Any:
        if field == "phones":
            return value["number"]
        return value.casefold() if isinstance(value, str) and field != "sites" else value

    seen = {key(value) for value in current}
    return [*current, *(value for value in given if key(value) not in seen)]


def patch_against(
    parsed: ParsedRow, current: Mapping[str, Any], *, replace_lists: bool = False
) -> dict[str, Any]:
    """The fields an update takes from a row, given the organization's fields as they are:
    the row's lists are added to the current ones (``replace_lists`` replaces them), and an
    address whose text did not change keeps its parts (postcode, city, region, country), which
    an export does not write."""
    patch = patch_of(parsed)
    for field in ADDRESS_FIELDS & patch.keys():
        old, new = current.get(field), patch[field]
        if old and new and old.get("text") == new.get("text"):
            del patch[field]
    if not replace_lists:
        for field in IMPORT_MERGED_LISTS:
            if field in patch:
                patch[field] = _united(field, list(current.get(field) or []), patch[field])
    return patch


def parse_mapping(text: str | None) -> dict[str, str | None]:
    """The ``mapping`` form field: a JSON object of header -> field (or null to ignore)."""
    if text is None or not text.strip():
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"mapping is not JSON: {exc.msg}") from None
    except RecursionError:
        raise ValueError("mapping must be a flat JSON object, not nested") from None
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and (v is None or isinstance(v, str)) for k, v in value.items()
    ):
        raise ValueError("mapping must be a JSON object of header -> field name or null")
    return value


# --- duplicates: in the file and among existing organizations ---------------------------------


def _other_company(inn: str | None, other: str | None) -> bool:
    """Two INNs that differ are two companies: a contact they share does not make a match."""
    return bool(inn and other and inn != other)


@dataclass
class FileKeys:
    """The INNs, e-mails and phones the earlier rows of a file gave, so that a row repeating one
    is reported as ``duplicate_in_file`` wherever in the file it is. An e-mail or phone repeated
    by a row of another INN is not a repetition (the same rule as for existing organizations).

    Held for the whole file (100,000 rows: 300,000 keys), so kept compact (ADR 66): per kind,
    each key maps to the number of the row that gave it (several numbers when rows of other
    companies gave it too), and each such row's INN is kept once, not once per key."""

    seen: dict[str, dict[str, int | list[int]]] = dataclasses.field(default_factory=dict)
    inns: dict[int, str | None] = dataclasses.field(default_factory=dict)
    """The INN of each row that gave a key, by row number."""

    def _rows(self, kind: str, key: str) -> list[int]:
        found = self.seen.get(kind, {}).get(key)
        return [] if found is None else [found] if isinstance(found, int) else found

    def check(self, parsed: ParsedRow) -> RowProblem | None:
        """The problem when the row repeats an earlier row; the row's keys are kept either way."""
        keys = [
            *([("id", str(parsed.id))] if parsed.id else []),
            *([("inn", parsed.inn)] if parsed.inn else []),
            *(("email", e) for e in parsed.emails()),
            *(("phone", p) for p in parsed.phones()),
        ]
        problem = None
        for kind, key in keys:
            match = next(
                (
                    row
                    for row in self._rows(kind, key)
                    if not _other_company(parsed.inn, self.inns[row])
                ),
                None,
            )
            if match is not None:
                problem = RowProblem(
                    field=kind, message=f"the same {kind} as row {match}", kind="duplicate_in_file"
                )
                break
        for kind, key in keys:
            earlier = self._rows(kind, key)
            if any(self.inns[row] == parsed.inn for row in earlier):
                continue
            self.inns[parsed.number] = parsed.inn
            table = self.seen.setdefault(kind, {})
            if not earlier:
                table[key] = parsed.number
            elif len(earlier) == 1:
                table[key] = [*earlier, parsed.number]
            else:
                earlier.append(parsed.number)
        return problem


def _contacts(org: Organization) -> list[tuple[str, str]]:
    return [
        *([("inn", org.inn)] if org.inn else []),
        *(("email", e.lower()) for e in org.emails),
        *(("phone", p.number) for p in org.phones),
    ]


class KnownOrganizations:
    """Existing organizations a chunk of rows may match, by INN, e-mail and phone, kept current
    while the chunk's rows update them (a row sees what the rows before it did)."""

    def __init__(self, found: Iterable[Organization]) -> None:
        self.by_key: dict[str, dict[uuid.UUID, str | None]] = {}
        self.organizations: dict[uuid.UUID, Organization] = {}
        for org in found:
            self.put(org)

    def put(self, org: Organization) -> None:
        """Add or replace an organization (after an update changed its identifiers)."""
        old = self.organizations.get(org.id)
        if old is not None:
            for kind, key in _contacts(old):
                self.by_key.get(f"{kind}:{key}", {}).pop(org.id, None)
        self.organizations[org.id] = org
        for kind, key in _contacts(org):
            self.by_key.setdefault(f"{kind}:{key}", {})[org.id] = org.inn

    def match(self, parsed: ParsedRow) -> tuple[Organization | None, str | None, RowProblem | None]:
        """``(organization, matched_by, problem)``: the id the row names (``unknown_id`` when
        it is none of these), else the INN, then an e-mail, then a phone; several organizations
        for one criterion make the row ``ambiguous``."""
        if parsed.id is not None:
            if (named := self.organizations.get(parsed.id)) is not None:
                return named, "id", None
            return (
                None,
                None,
                RowProblem(
                    field="id",
                    kind="unknown_id",
                    message="no organization with this id that you may see",
                ),
            )
        tries: list[tuple[str, list[str]]] = [
            *([("inn", [parsed.inn])] if parsed.inn else []),
            ("email", parsed.emails()),
            ("phone", parsed.phones()),
        ]
        for kind, keys in tries:
            ids = list(
                dict.fromkeys(
                    org_id
                    for key in keys
                    for org_id, inn in self.by_key.get(f"{kind}:{key}", {}).items()
                    if kind == "inn" or not _other_company(parsed.inn, inn)
                )
            )
            if len(ids) > 1:
                return (
                    None,
                    None,
                    RowProblem(
                        field=kind,
                        kind="ambiguous",
                        message=f"the {kind} matches {len(ids)} organizations; merge them first",
                    ),
                )
            if ids:
                return self.organizations[ids[0]], kind, None
        return None, None, None


class JobState(enum.StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    REJECTED = "rejected"
    FAILED = "failed"
    CANCELLED = "cancelled"


UNFINISHED = frozenset({JobState.QUEUED, JobState.RUNNING})


class ImportCounts(BaseModel):
    """What an import did so far (a rejected all-or-nothing run: nothing created or updated)."""

    rows: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    skipped: int = Field(default=0, description="rows not imported: the rows with errors")


class ImportSource(BaseModel):
    """Where the import read the file's header (ADR 48)."""

    sheet: str | None = Field(default=None, description="the worksheet of an .xlsx file")
    header_row: int = Field(description="the header's (first) row, as the file numbers it")
    header_rows: int = Field(default=1, description="2 for a two-row header (1C's groups)")
    encoding: str | None = Field(
        default=None, description="the encoding a CSV file was read in (ADR 43)"
    )


class ImportJob(BaseModel):
    """An import running in the background (ADR 41)."""

    id: uuid.UUID
    state: JobState
    mode: ImportMode
    kind: ImportKind = Field(
        default=ImportKind.ORGANIZATION,
        description="what the file's rows are imported as: organizations or persons",
    )
    filename: str | None
    directions: list[str]
    created_by: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    total_rows: int | None = Field(
        description="data rows the file has (blank ones too), once counted"
    )
    source: ImportSource | None = Field(
        default=None, description="where the header was read, once the file is opened"
    )
    rows_read: int = Field(description="rows matched and written (or checked) so far")
    counts: ImportCounts
    problem: dict[str, Any] | None = Field(
        description="why a failed or rejected import ended (problem+json)"
    )
    cancel_requested: bool
    attempts: int = Field(description="runs started; more than one after a process died")


class ReportPage(BaseModel):
    """Report lines, the rows with errors first, then by row number."""

    items: list[RowReport]
    next_cursor: str | None = None


def counts_of(report: ImportReport) -> ImportCounts:
    return ImportCounts(**report.model_dump(exclude={"mode", "report"}))


def rejected_counts(report: ImportReport) -> ImportCounts:
    """An all-or-nothing run refused: its rows were read, none created or updated."""
    return ImportCounts(rows=report.rows, skipped=report.rows)
