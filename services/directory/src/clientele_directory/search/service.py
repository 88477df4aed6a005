"""Search operations. Every query is direction-filtered: what a principal may not read never
matches. The same filter serves dynamic lists and exports (``filter_sql``)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from clientele_shared.auth.principal import Principal
from clientele_shared.http.problems import invalid, invalid_field
from clientele_shared.runtime import ServiceRuntime
from sqlalchemy import ColumnElement
from sqlalchemy.ext.asyncio import AsyncSession

from clientele_directory.attributes.rules import EntityKind
from clientele_directory.attributes.service import attribute_conditions
from clientele_directory.organizations.rules import Organization
from clientele_directory.persons.rules import Person
from clientele_directory.persons.service import with_employments
from clientele_directory.search import queries
from clientele_directory.search.queries import FilterSql
from clientele_directory.search.rules import (
    Cursor,
    CursorError,
    OrganizationFilter,
    OrganizationSort,
    PersonSort,
    decode_cursor,
    encode_cursor,
    fingerprint,
    search_terms,
)
from clientele_directory.search.schemas import (
    OrganizationPage,
    OrganizationSearch,
    PersonPage,
    PersonSearch,
)
from clientele_directory.values import STORED


def search_similarity(runtime: ServiceRuntime) -> float:
    """The configured word similarity from which a search term is taken for a word."""
    return float(getattr(runtime.settings, "search_word_similarity", 0.4))


def _invalid_text(field: str, message: str) -> Exception:
    """A 422 naming the search text's field as one name (``filter.q`` too)."""
    return invalid([{"loc": (field,), "msg": message, "type": "q"}])


def _terms(q: str, field: str = "q") -> list[str]:
    try:
        terms = search_terms(q)
    except Exception:
        raise _invalid_text(field, "the search text has control characters") from None
    if not terms:
        raise _invalid_text(field, "the search text has no words")
    return terms


def _cursor_key(token: str | None, sort: str, bound: str, size: int) -> tuple[Any, ...] | None:
    if token is None:
        return None
    try:
        return decode_cursor(token, sort=sort, fingerprint=bound, size=size)
    except CursorError as exc:
        raise invalid_field("cursor", str(exc), "cursor") from None


async def filter_sql(
    session: AsyncSession, principal: Principal, flt: OrganizationFilter
) -> FilterSql:
    """A filter over live organizations the principal may see, as SQL: its text resolved against
    the search vocabulary and the people, its attributes against their definitions (422 for
    what does not fit)."""
    others = queries.other_conditions(
        flt, await attribute_conditions(session, EntityKind.ORGANIZATION, flt)
    )
    if flt.q is not None:
        patterns = await queries.term_patterns(session, _terms(flt.q, "filter.q"))
        people = await queries.people_matches(session, patterns)

        def text(table: Any) -> ColumnElement[bool]:
            return queries.organization_text(table, patterns, people)

        return FilterSql(
            lambda table: queries.field_conditions(principal, flt, table), text, others
        )
    return FilterSql(lambda table: queries.field_conditions(principal, flt, table), None, others)


async def filter_conditions(
    session: AsyncSession, principal: Principal, flt: OrganizationFilter
) -> list[ColumnElement[bool]]:
    """SQL conditions of a filter over live organizations the principal may see (see
    ``filter_sql``)."""
    return (await filter_sql(session, principal, flt)).all()


async def prepare_search(session: AsyncSession, runtime: ServiceRuntime) -> None:
    """The transaction's settings for a search (its word similarity among them)."""
    await queries.prepare_search(session, search_similarity(runtime))


async def search_organizations_page(
    session: AsyncSession,
    runtime: ServiceRuntime,
    principal: Principal,
    flt: OrganizationFilter,
    *,
    sort: OrganizationSort,
    limit: int,
    cursor: str | None,
    extra: Sequence[ColumnElement[bool]] = (),
    bound_to: str = "",
) -> OrganizationPage:
    """One page of the organizations matching ``flt`` (plus ``extra`` conditions)."""
    if sort is OrganizationSort.RELEVANCE and flt.q is None:
        raise invalid_field("sort", "relevance needs a search text (filter.q)", "sort")
    await prepare_search(session, runtime)
    collation = await queries.name_collation(session)
    score = None
    if sort is OrganizationSort.RELEVANCE:
        assert flt.q is not None
        score = queries.organization_score(_terms(flt.q, "filter.q"))
    order = queries.organization_order(sort, collation, score)
    sql = await filter_sql(session, principal, flt)
    bound = fingerprint(flt.canonical(), sort.value, bound_to)
    key = _cursor_key(cursor, sort.value, bound, len(order.columns))
    stmt = queries.organization_page_statement(
        sql, extra, sort, collation, order, key, score, limit + 1
    )
    rows = (await session.execute(stmt)).all()
    items = [Organization.model_validate(r, from_attributes=True, context=STORED) for r in rows]
    next_cursor = None
    if len(rows) > limit:
        items = items[:limit]
        last = rows[limit - 1]
        values: tuple[Any, ...]
        if sort is OrganizationSort.RELEVANCE:
            values = (float(last.score), last.id)
        elif sort in (OrganizationSort.NAME, OrganizationSort.NAME_DESC):
            values = (last.legal_name, last.id)
        else:
            values = (last.created_at, last.id)
        keys = tuple(queries.cursor_value(v) for v in values)
        next_cursor = encode_cursor(Cursor(sort.value, keys, bound))
    return OrganizationPage(items=items, next_cursor=next_cursor)


async def search_organizations(
    *, runtime: ServiceRuntime, principal: Principal, search: OrganizationSearch
) -> OrganizationPage:
    async with runtime.sessions() as session, session.begin():
        return await search_organizations_page(
            session,
            runtime,
            principal,
            search.filter,
            sort=search.sort,
            limit=search.limit,
            cursor=search.cursor,
        )


async def search_persons(
    *, runtime: ServiceRuntime, principal: Principal, search: PersonSearch
) -> PersonPage:
    """Persons the caller may see whose names, phones or e-mails match, a page at a time."""
    if search.sort is PersonSort.RELEVANCE and search.q is None:
        raise invalid_field("sort", "relevance needs a search text (q)", "sort")
    conditions = queries.person_conditions(principal, search.organization_id, search.blocked)
    terms = _terms(search.q) if search.q is not None else None
    score = queries.person_score(terms) if terms is not None else None
    async with runtime.sessions() as session, session.begin():
        await prepare_search(session, runtime)
        if terms is not None:
            patterns = await queries.term_patterns(session, terms)
            conditions.append(queries.person_text(patterns))
        names = queries.person_names(await queries.name_collation(session))
        order = queries.person_order(search.sort is PersonSort.RELEVANCE, score, names)
        canonical = search.model_dump_json(exclude={"cursor", "limit", "sort"})
        bound = fingerprint(canonical, search.sort.value, "persons")
        key = _cursor_key(search.cursor, search.sort.value, bound, len(order.columns))
        if key is not None:
            conditions.append(order.after(key))
        stmt = queries.person_page_statement(conditions, order, names, score, search.limit + 1)
        rows = (await session.execute(stmt)).all()
        found = [Person.model_validate(r, from_attributes=True, context=STORED) for r in rows]
        next_cursor = None
        if len(rows) > search.limit:
            found = found[: search.limit]
            last = rows[search.limit - 1]
            values = (
                (float(last.score), last.id)
                if search.sort is PersonSort.RELEVANCE
                else (last.sort_last, last.sort_first, last.id)
            )
            keys = tuple(queries.cursor_value(v) for v in values)
            next_cursor = encode_cursor(Cursor(search.sort.value, keys, bound))
        items = await with_employments(session, principal, found)
    return PersonPage(items=items, next_cursor=next_cursor)
