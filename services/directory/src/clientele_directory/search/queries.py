"""SQL of search over organizations and persons: text (pg_trgm), filters, sorting, keyset
pages. Every condition here is direction-filtered: what a principal may not read never matches."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from clientele_shared.auth.access import visible_to
from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import invalid_field
from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    any_,
    cast,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    text,
    true,
    tuple_,
    union_all,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.types import Integer, String, Text, Uuid

from clientele_directory.blocking import organization_blocked_expr, person_blocked_expr
from clientele_directory.search.rules import (
    OrganizationFilter,
    OrganizationSort,
    like_pattern,
)
from clientele_directory.tables import employments, organizations, persons, search_words
from clientele_directory.visibility import (
    employment_orgs,
    live_employment_at_live_org,
    person_visible,
)

ICU_COLLATION = "und-x-icu"
_collation: dict[str, str | None] = {}


async def name_collation(session: AsyncSession) -> str | None:
    """ICU's root collation when the server has it (Ё with Е, Latin before Cyrillic), else
    None (the database's default order). Asked once per process."""
    if "name" not in _collation:
        found = await session.scalar(
            text("SELECT collname FROM pg_collation WHERE collname = :name"),
            {"name": ICU_COLLATION},
        )
        _collation["name"] = str(found) if found else None
    return _collation["name"]


FUZZY_WORDS = 5
"""At most this many words of the vocabulary stand for a term's typo'd spellings."""
MIN_FUZZY_LENGTH = 3
"""Shorter terms match only as fragments (their trigrams say little)."""
LISTED_PEOPLE_MATCHES = 10_000
"""Up to this many organizations found through their people are given to the organization query
as a list of ids (indexable); beyond it, as a subquery."""


async def prepare_search(session: AsyncSession, threshold: float) -> None:
    """For this transaction: the trigram similarity (0..1) from which a word is taken for a
    typo'd spelling of a term (and the word similarity of ``<%``, the same); plans made for
    each search's own terms (a plan cached for other patterns would guess how many rows a LIKE
    keeps, and pick the wrong index); and no parallel workers (a search reads a few thousand
    rows at most: starting workers costs more than it saves, and an interactive request should
    not take cores from the others)."""
    await session.execute(
        select(
            func.set_config("pg_trgm.similarity_threshold", str(threshold), True),
            func.set_config("pg_trgm.word_similarity_threshold", str(threshold), True),
            func.set_config("plan_cache_mode", "force_custom_plan", True),
            func.set_config("max_parallel_workers_per_gather", "0", True),
        )
    )


async def term_patterns(session: AsyncSession, terms: Sequence[str]) -> list[list[str]]:
    """For each term, the LIKE patterns of which a document must hold one: the term itself, and,
    when no word of the search vocabulary holds the term (it is not a fragment of anything
    written, so likely mistyped), the words most similar to it as a whole (trigram similarity
    from the threshold of ``prepare_search``; at most FUZZY_WORDS). Words the term holds are
    left out (``стро`` for ``строй`` would match far more than a typo). A term found as written
    gets no other spellings: they would only add documents that do not hold what was typed (six
    times as many for ``энергосерв``). One query for all the terms."""
    fuzzy = [t for t in terms if len(t) >= MIN_FUZZY_LENGTH and any(c.isalpha() for c in t)]
    similar: dict[str, list[str]] = {term: [] for term in terms}
    if fuzzy:
        given = (
            func.unnest(
                cast(fuzzy, ARRAY(Text)), cast([like_pattern(t) for t in fuzzy], ARRAY(Text))
            )
            .table_valued("term", "pattern")
            .render_derived("given")
        )
        word = search_words.c.word
        known = search_words.alias("known")
        nearest = (
            select(word)
            .where(
                word.op("%")(given.c.term),
                func.strpos(given.c.term, word) == 0,
            )
            .order_by(func.similarity(given.c.term, word).desc(), word)
            .limit(FUZZY_WORDS)
            .lateral("nearest")
        )
        rows = await session.execute(
            select(given.c.term, nearest.c.word)
            .select_from(given.join(nearest, true()))
            .where(~exists().where(known.c.word.like(given.c.pattern, escape="\\")))
        )
        for term, found in rows:
            similar[term].append(found)
    return [[like_pattern(term)] + [like_pattern(w) for w in similar[term]] for term in terms]


def _all_terms(document: Any, patterns: Sequence[Sequence[str]]) -> ColumnElement[bool]:
    """Every term is in the document: as written (a substring), or as one of its typo'd
    spellings found in the vocabulary."""
    return and_(*(or_(*(document.like(p, escape="\\") for p in term)) for term in patterns))


PeopleMatches = list[uuid.UUID] | Select[Any] | None
"""The organizations found through their people: ids, a subquery when there are too many to
list, or None when there are none."""


async def people_matches(session: AsyncSession, patterns: Sequence[Sequence[str]]) -> PeopleMatches:
    """The organizations where a live person whose document matches every term has a live
    employment.

    They are looked up first and given to the organization query as a list of ids, so its
    condition stays one the planner can serve from indexes (the document's trigrams or the name
    order, with the primary key for the people's organizations); a correlated EXISTS would be
    checked row by row.
    """
    through_people = (
        select(employments.c.organization_id)
        .select_from(employments.join(persons, persons.c.id == employments.c.person_id))
        .where(
            employments.c.deleted_at.is_(None),
            persons.c.deleted_at.is_(None),
            _all_terms(persons.c.search_text, patterns),
        )
        .distinct()
    )
    found = list(await session.scalars(through_people.limit(LISTED_PEOPLE_MATCHES + 1)))
    if not found:
        return None
    if len(found) > LISTED_PEOPLE_MATCHES:
        return through_people
    return found


def organization_text(
    table: Any, patterns: Sequence[Sequence[str]], people: PeopleMatches
) -> ColumnElement[bool]:
    """The organization's own document matches every term, or one of its people's does."""
    own = _all_terms(table.c.search_text, patterns)
    if people is None:
        return own
    if isinstance(people, list):
        return or_(own, table.c.id == any_(cast(people, ARRAY(Uuid))))
    return or_(own, table.c.id.in_(people))


@dataclass(frozen=True)
class FilterSql:
    """A filter over live organizations as SQL, in parts: conditions on the fields the covering
    name-order index holds (``fields``: visibility, status, directions) and the text (``text``),
    both built for ``organizations`` or an alias of it, and the rest (``others``, on
    ``organizations``)."""

    fields: Callable[[Any], list[ColumnElement[bool]]]
    text: Callable[[Any], ColumnElement[bool]] | None
    others: list[ColumnElement[bool]]

    def all(self) -> list[ColumnElement[bool]]:
        """Every condition, on ``organizations``."""
        conditions = [organizations.c.deleted_at.is_(None), *self.fields(organizations)]
        if self.text is not None:
            conditions.append(self.text(organizations))
        return [*conditions, *self.others]


def _labels(values: list[str]) -> Any:
    return cast(values, ARRAY(String))


def field_conditions(
    principal: Principal, flt: OrganizationFilter, table: Any
) -> list[ColumnElement[bool]]:
    """The conditions on the fields the covering name-order index holds: visible to the
    principal, the filter's status and directions, on ``table`` (``organizations`` or an alias
    of it)."""
    conditions: list[ColumnElement[bool]] = [visible_to(principal, table.c.directions)]
    if flt.status:
        conditions.append(table.c.status.in_([s.value for s in flt.status]))
    if flt.directions:
        conditions.append(table.c.directions.overlap(_labels(flt.directions)))
    return conditions


def other_conditions(
    flt: OrganizationFilter, attribute_conditions: Sequence[ColumnElement[bool]] = ()
) -> list[ColumnElement[bool]]:
    """The filter's conditions on the other fields (tags, categories, industry, responsible,
    blocked, custom attributes), on ``organizations``."""
    conditions: list[ColumnElement[bool]] = []
    if flt.tags:
        conditions.append(organizations.c.tags.overlap(_labels(flt.tags)))
    if flt.categories:
        conditions.append(organizations.c.categories.overlap(_labels(flt.categories)))
    if flt.industry:
        conditions.append(organizations.c.industry.in_(flt.industry))
    if flt.responsible_employee_id:
        conditions.append(organizations.c.responsible_employee_id.in_(flt.responsible_employee_id))
    if flt.blocked is not None:
        blocked = organization_blocked_expr()
        conditions.append(blocked if flt.blocked else ~blocked)
    conditions.extend(attribute_conditions)
    return conditions


# --- sorting and pages -----------------------------------------------------------------------


class _Order:
    """An order of rows and the keyset condition that continues it after a cursor."""

    def __init__(
        self,
        columns: list[Any],
        descending: bool,
        parse: list[Callable[[Any], Any]],
        *,
        mixed: bool = False,
    ) -> None:
        self.columns = columns
        self.descending = descending
        self.parse = parse
        self.mixed = mixed  # first column descending, the id ascending (relevance)

    def order_by(self) -> list[Any]:
        if self.mixed:
            return [self.columns[0].desc(), self.columns[1].asc()]
        return [c.desc() if self.descending else c.asc() for c in self.columns]

    def after(self, key: tuple[Any, ...]) -> ColumnElement[bool]:
        try:
            values = [parse(value) for parse, value in zip(self.parse, key, strict=True)]
        except (TypeError, ValueError):
            raise invalid_field("cursor", "not a cursor of this API", "cursor") from None
        if self.mixed:
            first, ident = self.columns
            return or_(first < values[0], and_(first == values[0], ident > values[1]))
        left = tuple_(*self.columns)
        right = tuple_(
            *(literal(v, type_=c.type) for v, c in zip(values, self.columns, strict=True))
        )
        return left < right if self.descending else left > right


def _to_uuid(value: Any) -> uuid.UUID:
    return uuid.UUID(str(value))


def _to_time(value: Any) -> datetime:
    return datetime.fromisoformat(str(value))


def _to_float(value: Any) -> float:
    if not isinstance(value, int | float):
        raise TypeError("not a number")
    return float(value)


def _to_str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError("not a text")
    return value


def _json_key(value: Any) -> Any:
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    return value


def organization_order(
    sort: OrganizationSort, collation: str | None, score: Any | None, table: Any = organizations
) -> _Order:
    """The order of ``sort`` over ``table`` (``organizations`` or an alias of it)."""
    name = table.c.legal_name
    if collation:
        name = name.collate(collation)
    ident = table.c.id
    if sort is OrganizationSort.RELEVANCE:
        assert score is not None
        return _Order([score, ident], True, [_to_float, _to_uuid], mixed=True)
    if sort in (OrganizationSort.NAME, OrganizationSort.NAME_DESC):
        return _Order([name, ident], sort is OrganizationSort.NAME_DESC, [_to_str, _to_uuid])
    return _Order(
        [table.c.created_at, ident],
        sort is OrganizationSort.CREATED_DESC,
        [_to_time, _to_uuid],
    )


COVERED_BYTES = 2000
"""A live organization is in the covering name-order index (migration 0014) when its name, its
search document and 72 bytes per direction take at most this many bytes: a B-tree entry holds
about 2.7 kB at most, and a few documents (fifty e-mails...) would not fit. The rest are found by
a search of their own (an index of just them, nearly always empty)."""


def _index_size(table: Any) -> ColumnElement[Any]:
    """The size the covering index's predicate bounds, written as migration 0014 writes it (the
    planner matches the two expressions as written)."""
    return (
        func.octet_length(table.c.legal_name)
        + func.octet_length(table.c.search_text)
        + literal_column("72", Integer) * func.cardinality(table.c.directions, type_=Integer)
    )


def _walk_margin(table: Any) -> ColumnElement[bool]:
    """Always true (every status has letters), but the planner, knowing nothing of the
    expression, counts a third of the rows through it: a walk along the name order is planned
    as if the fragment matched three times fewer rows than estimated, so it is chosen only when
    it wins by that margin. The estimate comes from 1000 sampled documents and is often off by
    half near where the walk and the trigram index cost the same; a walk that meets fewer
    matches than planned reads on through the index (50 ms for 100,000 entries), a trigram read
    of more candidates than planned costs little more than its estimate."""
    return func.length(table.c.status) > 0


def _covered_page(
    sql: FilterSql,
    extra: Sequence[ColumnElement[bool]],
    sort: OrganizationSort,
    collation: str | None,
    key: tuple[Any, ...] | None,
    size: int,
) -> Select[Any]:
    """A page of a text search by name, read along the covering name-order index.

    The index holds the name, id, status, directions and search document of live organizations:
    the text, status and directions are checked in the index while it is walked in name order
    (no table row is read for the many that fail a common fragment: 20,000 index entries take
    about 10 ms, 20,000 rows over 100 ms), and only the rows that pass are read, by primary key,
    for the other conditions and the answer. A rare fragment is still read through the trigram
    index. Status and directions are written as ``(...) IS TRUE`` there: the same condition,
    but one the planner cannot AND with their own indexes (a bitmap of the 450,000 rows of two
    directions costs more than checking the few rows the fragment finds). The few organizations
    too large for the index are searched apart and the two pages merged.
    """
    assert sql.text is not None
    cover = organizations.alias("cover")
    blocked = organization_blocked_expr().label("blocked")
    bound = literal_column(str(COVERED_BYTES), Integer)
    pages = []
    for table, size_condition in (
        (cover, and_(_index_size(cover) <= bound, _walk_margin(cover))),
        (organizations, _index_size(organizations) > bound),
    ):
        order = organization_order(sort, collation, None, table)
        conditions = [
            table.c.deleted_at.is_(None),
            size_condition,
            *(condition.is_(True) for condition in sql.fields(table)),
            sql.text(table),
            *sql.others,
            *extra,
        ]
        if key is not None:
            conditions.append(order.after(key))
        stmt = select(organizations, blocked, order.columns[0].label("sort_name"))
        if table is cover:
            stmt = stmt.select_from(cover.join(organizations, organizations.c.id == cover.c.id))
        pages.append(stmt.where(*conditions).order_by(*order.order_by()).limit(size))
    found = union_all(*pages).subquery("found")
    sort_name = found.c.sort_name.collate(collation) if collation else found.c.sort_name
    descending = sort is OrganizationSort.NAME_DESC
    return (
        select(found)
        .order_by(*(c.desc() if descending else c.asc() for c in (sort_name, found.c.id)))
        .limit(size)
    )


def organization_page_statement(
    sql: FilterSql,
    extra: Sequence[ColumnElement[bool]],
    sort: OrganizationSort,
    collation: str | None,
    order: _Order,
    key: tuple[Any, ...] | None,
    score: ColumnElement[float] | None,
    size: int,
) -> Select[Any]:
    """A page of organizations matching ``sql`` and ``extra``, after ``key`` in ``order``."""
    if sql.text is not None and sort in (OrganizationSort.NAME, OrganizationSort.NAME_DESC):
        return _covered_page(sql, extra, sort, collation, key, size)
    conditions = [*sql.all(), *extra]
    if key is not None:
        conditions.append(order.after(key))
    columns: list[Any] = [organizations, organization_blocked_expr().label("blocked")]
    if score is not None:
        columns.append(score.label("score"))
    return select(*columns).where(*conditions).order_by(*order.order_by()).limit(size)


def organization_score(terms: Sequence[str]) -> ColumnElement[float]:
    return func.word_similarity(literal(" ".join(terms)), organizations.c.search_text)


def person_score(terms: Sequence[str]) -> ColumnElement[float]:
    return func.word_similarity(literal(" ".join(terms)), persons.c.search_text)


def person_conditions(
    principal: Principal, organization_id: uuid.UUID | None, blocked: bool | None
) -> list[ColumnElement[bool]]:
    """Live persons the principal sees (working at ``organization_id``; blocked or not)."""
    conditions: list[ColumnElement[bool]] = [
        persons.c.deleted_at.is_(None),
        person_visible(principal),
    ]
    if organization_id is not None:
        conditions.append(
            exists(
                select(1)
                .select_from(employment_orgs)
                .where(
                    employments.c.person_id == persons.c.id,
                    employments.c.organization_id == organization_id,
                    live_employment_at_live_org,
                    visible_to(principal, organizations.c.directions),
                )
            )
        )
    if blocked is not None:
        flag = person_blocked_expr()
        conditions.append(flag if blocked else ~flag)
    return conditions


def person_text(patterns: Sequence[Sequence[str]]) -> ColumnElement[bool]:
    return _all_terms(persons.c.search_text, patterns)


def person_names(collation: str | None) -> tuple[Any, Any]:
    """The last and first names persons sort by (Latin ones when there are no others)."""
    last_name: Any = func.coalesce(persons.c.last_name, persons.c.last_name_latin, "")
    first_name: Any = func.coalesce(persons.c.first_name, persons.c.first_name_latin, "")
    if collation:
        last_name, first_name = last_name.collate(collation), first_name.collate(collation)
    return last_name, first_name


def person_order(
    relevance: bool, score: ColumnElement[float] | None, names: tuple[Any, Any]
) -> _Order:
    if relevance:
        return _Order([score, persons.c.id], True, [_to_float, _to_uuid], mixed=True)
    last_name, first_name = names
    return _Order([last_name, first_name, persons.c.id], False, [_to_str, _to_str, _to_uuid])


def person_page_statement(
    conditions: Sequence[ColumnElement[bool]],
    order: _Order,
    names: tuple[Any, Any],
    score: ColumnElement[float] | None,
    size: int,
) -> Select[Any]:
    last_name, first_name = names
    columns: list[Any] = [
        persons,
        person_blocked_expr().label("blocked"),
        last_name.label("sort_last"),
        first_name.label("sort_first"),
    ]
    if score is not None:
        columns.append(score.label("score"))
    return select(*columns).where(*conditions).order_by(*order.order_by()).limit(size)


def cursor_value(value: Any) -> Any:
    return _json_key(value)
