"""The order a batch's events are applied in (ADR 59), without infrastructure."""

from typing import Any

from aiokafka import ConsumerRecord
from clientele_shared.events.inbox import in_lock_order


def _received(partition: int, offset: int, key: bytes | None) -> Any:
    record = ConsumerRecord("t", partition, offset, 0, 0, key, b"{}", None, 0, 2, headers=[])
    return record, None, None


def test_events_go_in_key_order_and_each_keys_in_offset_order() -> None:
    batch = [
        _received(1, 7, b"b"),
        _received(0, 3, b"c"),
        _received(1, 8, b"a"),
        _received(1, 9, b"b"),
        _received(0, 4, None),
        _received(0, 5, b"c"),
        _received(1, 10, b"b"),
    ]
    applied = [(record.key, record.offset) for record, _, _ in in_lock_order(batch)]
    assert applied == [(None, 4), (b"a", 8), (b"b", 7), (b"b", 9), (b"b", 10), (b"c", 3), (b"c", 5)]
