"""A batched unit of work hands its appended rows and staged events to another (ADR 54)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from enum import Enum
from typing import Any, cast

import pytest
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.http.concurrency import PreconditionFailed
from clientele_shared.service_layer import (
    UnitOfWork,
    Versioned,
    _array_literal,
    audit_table,
    defer_version,
)
from sqlalchemy import Column, DateTime, Integer, MetaData, String, Table, Uuid
from sqlalchemy.ext.asyncio import AsyncSession

HISTORY = Table("history", MetaData(), Column("entry", String))


def _uow(*, batched: bool = True) -> UnitOfWork:
    return UnitOfWork(
        cast(AsyncSession, object()),
        cast(Outbox, object()),
        None,
        Actor(subject="t"),
        batched=batched,
    )


def _event() -> Envelope:
    return Envelope(
        type="t.happened",
        schema_version=1,
        producer="t",
        correlation_id="c",
        aggregate_id=str(uuid.uuid4()),
        payload={},
    )


async def test_hand_over_moves_rows_and_events_in_order() -> None:
    batch, first, second = _uow(), _uow(), _uow()
    events = [_event(), _event()]
    await first.append(HISTORY, [{"entry": "a"}])
    first.stage(events[0])
    await second.append(HISTORY, [{"entry": "b"}])
    second.stage(events[1])
    first.hand_over(batch)
    second.hand_over(batch)
    assert batch.events == events
    assert cast(dict[Table, Any], batch._appended)[HISTORY] == [{"entry": "a"}, {"entry": "b"}]
    assert first.events == []
    assert second.events == []
    assert first._appended == {}
    assert second._appended == {}


def test_only_a_batched_unit_of_work_hands_over() -> None:
    with pytest.raises(RuntimeError):
        _uow(batched=False).hand_over(_uow())


class _Recorder:
    """A session that records the statements it is asked to run; an UPDATE of deferred
    versions writes every record it names but those in ``changed`` (changed underneath)."""

    def __init__(self, changed: frozenset[uuid.UUID] = frozenset()) -> None:
        self.executed: list[tuple[Any, Any]] = []
        self.changed = changed

    async def scalars(self, statement: Any, parameters: Any) -> list[uuid.UUID]:
        self.executed.append((statement, parameters))
        return [key for key in parameters["w_key"] if key not in self.changed]


RECORDS = Table(
    "records",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("name", String),
    Column("note", String),
    Column("version", Integer),
    Column("updated_at", DateTime(timezone=True)),
    Column("updated_by", String),
)
RECORD = Versioned(RECORDS, "record")


def _deferring(session: _Recorder) -> UnitOfWork:
    return UnitOfWork(
        cast(AsyncSession, session),
        cast(Outbox, object()),
        audit_table(MetaData()),
        Actor(subject="rule"),
        batched=True,
        defer_at=datetime.now(UTC),
    )


async def test_deferred_versions_are_one_write_per_record_sent_together() -> None:
    """ADR 60: two patches of one record become one UPDATE from its first version to its
    last, with the later values over the earlier; records of one shape go in one execute."""
    session = _Recorder()
    uow = _deferring(session)
    one, two = uuid.uuid4(), uuid.uuid4()
    for entity, current, values in (
        (one, 1, {"name": "a", "note": "x"}),
        (two, 7, {"name": "b", "note": "y"}),
        (one, 2, {"name": "c", "note": "x"}),
    ):
        await defer_version(
            uow, RECORD, entity, current=current, expected={current}, values=values, action="u"
        )
    assert session.executed == []  # nothing written before the flush
    await uow.flush_versions()
    assert len(session.executed) == 1
    _, parameters = session.executed[0]
    by_key = {
        key: dict(zip(parameters, row, strict=True))
        for key, row in zip(
            parameters["w_key"], zip(*parameters.values(), strict=True), strict=True
        )
    }
    assert (by_key[one]["w_current"], by_key[one]["w_version"], by_key[one]["w_name"]) == (
        1,
        3,
        "c",
    )
    assert (by_key[two]["w_current"], by_key[two]["w_version"], by_key[two]["w_by"]) == (
        7,
        8,
        "rule",
    )
    await uow.flush_versions()
    assert len(session.executed) == 1  # flushed once


async def test_a_deferred_write_of_a_record_changed_underneath_is_refused_at_the_flush() -> None:
    """A record whose version moved since it was read is not written by the flush's UPDATE:
    the flush says so (412) rather than leave the write silently undone."""
    changed = uuid.uuid4()
    session = _Recorder(changed=frozenset({changed}))
    uow = _deferring(session)
    for entity in (uuid.uuid4(), changed):
        await defer_version(
            uow, RECORD, entity, current=3, expected={3}, values={"name": "a"}, action="u"
        )
    with pytest.raises(PreconditionFailed):
        await uow.flush_versions()


async def test_a_deferred_write_out_of_version_order_is_refused_at_the_flush() -> None:
    session = _Recorder()
    uow = _deferring(session)
    entity = uuid.uuid4()
    await defer_version(
        uow, RECORD, entity, current=1, expected={1}, values={"name": "a"}, action="u"
    )
    await defer_version(
        uow, RECORD, entity, current=5, expected={5}, values={"name": "b"}, action="u"
    )
    with pytest.raises(PreconditionFailed):
        await uow.flush_versions()


async def test_only_a_deferring_unit_of_work_defers() -> None:
    with pytest.raises(RuntimeError):
        await defer_version(
            _uow(), RECORD, uuid.uuid4(), current=1, expected={1}, values={}, action="u"
        )


def test_an_array_column_takes_only_elements_whose_text_is_their_value() -> None:
    """Deferred array columns travel as PostgreSQL array text: quotes and backslashes are
    escaped, an enum is its value, and an element whose ``str`` is no value is refused."""
    assert _array_literal(['a"b', "c\\d", None, "{x,y}"]) == '{"a\\"b","c\\\\d",NULL,"{x,y}"}'
    assert _array_literal([uuid.UUID(int=1)]) == '{"00000000-0000-0000-0000-000000000001"}'

    class Colour(Enum):
        RED = "red"

    assert _array_literal([Colour.RED, "blue"]) == '{"red","blue"}'
    for bad in ({"a": 1}, ["nested"], 1.5):
        with pytest.raises(TypeError):
            _array_literal([bad])
