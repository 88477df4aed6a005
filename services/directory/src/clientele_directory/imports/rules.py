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

from clientele_directory.organizations.rules import Organization, OrganizationDraft

ORGANIZATION_COLUMNS: dict[str, tuple[str, ...]] = {
    "id": ("id", "идентификатор", "organization_id", "uuid"),
    "legal_name": (
        "legal_name",
        "legal name",
        "name",
        "company",
        "company name",
        "organization",
        "organisation",
        "наименование",
        "полное наименование",
        "название",
        "организация",
        "компания",
        "юридическое наименование",
        "юр наименование",
    ),
    "short_name": (
        "short_name",
        "short name",
        "brand",
        "краткое наименование",
        "сокращенное наименование",
        "короткое название",
        "бренд",
    ),
    "inn": ("inn", "tax id", "tin", "инн"),
    "kpp": ("kpp", "кпп"),
    "ogrn": ("ogrn", "огрн", "огрнип", "ogrnip"),
    "country": ("country", "страна"),
    "foreign_tax_id": ("foreign_tax_id", "foreign tax id", "vat", "vat id", "иностранный номер"),
    "legal_address": ("legal_address", "legal address", "юридический адрес", "юр адрес"),
    "actual_address": (
        "actual_address",
        "actual address",
        "address",
        "фактический адрес",
        "адрес",
    ),
    "postal_address": ("postal_address", "postal address", "почтовый адрес"),
    "phones": (
        "phones",
        "phone",
        "telephone",
        "tel",
        "телефон",
        "телефоны",
        "тел",
        "контактный телефон",
        "рабочий телефон",
    ),
    "emails": (
        "emails",
        "email",
        "e-mail",
        "mail",
        "почта",
        "электронная почта",
        "эл почта",
        "адрес электронной почты",
    ),
    "sites": ("sites", "site", "website", "web", "url", "сайт", "сайты", "веб-сайт"),
    "industry": ("industry", "отрасль", "вид деятельности", "сфера"),
    "categories": ("categories", "category", "категория", "категории"),
    "tags": ("tags", "tag", "теги", "тег", "метки"),
    "status": ("status", "статус"),
    "directions": ("directions", "direction", "направление", "направления"),
    "responsible_employee_id": ("responsible_employee_id", "responsible", "ответственный"),
}
"""Fields an organization import fills, with the headers that name them."""

LIST_FIELDS = frozenset({"phones", "emails", "sites", "categories", "tags", "directions"})
LABEL_FIELDS = frozenset({"categories", "tags"})
ADDRESS_FIELDS = frozenset({"legal_address", "actual_address", "postal_address"})

STATUS_WORDS: dict[str, str] = {
    "prospect": "prospect",
    "потенциальный": "prospect",
    "потенциальный клиент": "prospect",
    "лид": "prospect",
    "client": "client",
    "клиент": "client",
    "customer": "client",
    "partner": "partner",
    "партнер": "partner",
    "former": "former",
    "бывший": "former",
    "бывший клиент": "former",
}


def normalize_header(header: str) -> str:
    """A header as compared: lower case, ё as е, punctuation and extra spaces dropped."""
    text = header.replace("ё", "е").replace("Ё", "Е").casefold()
    text = re.sub(r"[\s_.:*()\-]+", " ", text)
    return text.strip()


def map_headers(
    headers: Sequence[str | None],
    attributes: Mapping[str, str],
    overrides: Mapping[str, str | None] | None = None,
) -> tuple[dict[int, str], list[str]]:
    """``({column index: field}, problems)`` for a header row.

    Fields are the keys of ORGANIZATION_COLUMNS or ``attributes.<key>`` (a column named by an
    attribute's key or label, given as ``{key: label}``). ``overrides`` maps a header as written
    to a field, or to None to ignore that column; they win over detection. Columns that name
    nothing are ignored; two columns naming one field is a problem.
    """
    aliases: dict[str, str] = {}
    for field, names in ORGANIZATION_COLUMNS.items():
        for name in names:
            aliases[normalize_header(name)] = field
    for key, label in attributes.items():
        aliases.setdefault(normalize_header(key), f"attributes.{key}")
        aliases.setdefault(normalize_header(label), f"attributes.{key}")
    known = set(ORGANIZATION_COLUMNS) | {f"attributes.{key}" for key in attributes}
    wanted = {normalize_header(h): f for h, f in (overrides or {}).items()}
    problems = [
        f"the mapping names an unknown field {field!r}"
        for field in wanted.values()
        if field is not None and field not in known
    ]
    mapping: dict[int, str] = {}
    seen: dict[str, int] = {}
    for index, header in enumerate(headers):
        if header is None:
            continue
        normalized = normalize_header(header)
        target = wanted[normalized] if normalized in wanted else aliases.get(normalized)
        if target is None or target not in known:
            continue
        if target in seen:
            problems.append(f"columns {seen[target] + 1} and {index + 1} both name {target!r}")
            continue
        seen[target] = index
        mapping[index] = target
    return mapping, problems


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


def row_document(
    mapping: Mapping[int, str], row: Sequence[str | None]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """``(organization fields, attribute values)`` of one row as raw values for validation:
    empty cells are left out, formula guards dropped, lists split, addresses wrapped, statuses
    read in either language.
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
        elif field == "sites":
            fields[field] = split_sites(value)
        elif field in LABEL_FIELDS:
            fields[field] = split_labels(value)
        elif field == "phones":
            fields[field] = [phone_value(part) for part in split_list(value)]
        elif field in LIST_FIELDS:
            fields[field] = split_list(value)
        elif field in ADDRESS_FIELDS:
            fields[field] = {"text": value}
        elif field == "status":
            fields[field] = STATUS_WORDS.get(normalize_header(value), value)
        elif field == "inn":
            fields[field] = re.sub(r"\s", "", value)
        else:
            fields[field] = value
    return fields, attributes


# --- rows as import candidates ---------------------------------------------------------------


class ImportMode(enum.StrEnum):
    DRY_RUN = "dry_run"
    ALL_OR_NOTHING = "all_or_nothing"
    VALID_ROWS = "valid_rows"


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
    organization_id: uuid.UUID | None = None
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

    @property
    def inn(self) -> str | None:
        return self.draft.inn if self.draft else None

    def emails(self) -> list[str]:
        """The row's e-mails as they are compared: lower case (``OFFICE@x.ru`` is
        ``office@x.ru``, as for persons)."""
        return [e.lower() for e in self.draft.emails] if self.draft else []

    def phones(self) -> list[str]:
        return [phone.number for phone in self.draft.phones] if self.draft else []


def _problems(errors: list[Any]) -> list[RowProblem]:
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
    if (named := fields.pop("id", None)) is not None:
        try:
            org_id = uuid.UUID(str(named).strip())
        except ValueError:
            errors.append(RowProblem(field="id", message="not an organization id", kind="uuid"))
    given = set(fields)
    if "directions" not in fields:
        fields["directions"] = list(default_directions)
    try:
        draft = OrganizationDraft.model_validate(fields)
    except PydanticValidationError as exc:
        errors += _problems(exc.errors(include_url=False))
        return ParsedRow(number, given, None, attributes, errors, id=org_id)
    return ParsedRow(number, given, draft if not errors else None, attributes, errors, id=org_id)


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
    by a row of another INN is not a repetition (the same rule as for existing organizations)."""

    seen: dict[str, list[tuple[int, str | None]]] = dataclasses.field(default_factory=dict)

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
            earlier = self.seen.get(f"{kind}:{key}", [])
            match = next((row for row, inn in earlier if not _other_company(parsed.inn, inn)), None)
            if match is not None:
                problem = RowProblem(
                    field=kind, message=f"the same {kind} as row {match}", kind="duplicate_in_file"
                )
                break
        for kind, key in keys:
            earlier = self.seen.setdefault(f"{kind}:{key}", [])
            if not any(inn == parsed.inn for _, inn in earlier):
                earlier.append((parsed.number, parsed.inn))
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


class ImportJob(BaseModel):
    """An import running in the background (ADR 41)."""

    id: uuid.UUID
    state: JobState
    mode: ImportMode
    filename: str | None
    directions: list[str]
    created_by: str
    created_at: dt.datetime
    finished_at: dt.datetime | None
    total_rows: int | None = Field(description="rows the file has (blank ones too), once counted")
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
