"""A batched unit of work hands its appended rows and staged events to another (ADR 54)."""

from __future__ import annotations

import uuid
from typing import Any, cast

import pytest
from clientele_shared.events.envelope import Actor, Envelope
from clientele_shared.events.outbox import Outbox
from clientele_shared.service_layer import UnitOfWork
from sqlalchemy import Column, MetaData, String, Table
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
