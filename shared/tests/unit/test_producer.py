"""The producer wrapper: an aiokafka producer that gave up is replaced, once, by a new one; an
error the producer recovers from itself replaces nothing (aiokafka faked: no broker here)."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from aiokafka.errors import (
    KafkaConnectionError,
    KafkaError,
    KafkaTimeoutError,
    OutOfOrderSequenceNumber,
)
from clientele_shared.events import producer as module
from clientele_shared.events.producer import Producer, gave_up


class FakeProducer:
    """Sends raise ``fail``, or their acknowledgements fail with ``fail_ack``, when set."""

    made: ClassVar[list[FakeProducer]] = []
    start_fails: ClassVar[list[Exception]] = []

    def __init__(self, **options: Any) -> None:
        self.options = options
        self.fail: Exception | None = None
        self.fail_ack: Exception | None = None
        self.started = self.stopped = False
        self.sent: list[tuple[str, bytes | None]] = []
        FakeProducer.made.append(self)

    async def start(self) -> None:
        if FakeProducer.start_fails:
            raise FakeProducer.start_fails.pop(0)
        self.started = True

    async def stop(self) -> None:
        self.stopped = True

    async def send(self, topic: str, value: bytes | None = None, **_: Any) -> asyncio.Future[Any]:
        await asyncio.sleep(0)  # two senders meet here
        if self.fail is not None:
            raise self.fail
        self.sent.append((topic, value))
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        if self.fail_ack is not None:
            future.set_exception(self.fail_ack)
        else:
            future.set_result("acknowledged")
        return future


@pytest.fixture
def fakes(monkeypatch: pytest.MonkeyPatch) -> type[FakeProducer]:
    FakeProducer.made, FakeProducer.start_fails = [], []
    monkeypatch.setattr(module, "AIOKafkaProducer", FakeProducer)
    return FakeProducer


async def _started(**options: Any) -> Producer:
    producer = Producer(client_id="test-relay", **options)
    await producer.start()
    return producer


async def test_a_producer_that_gave_up_is_replaced_and_the_error_still_reaches_the_caller(
    fakes: type[FakeProducer],
) -> None:
    producer = await _started(enable_idempotence=True)
    dead = fakes.made[0]
    dead.fail = OutOfOrderSequenceNumber()
    with pytest.raises(OutOfOrderSequenceNumber):  # the caller's retry is what sends again
        await producer.send("deals", b"1")
    assert len(fakes.made) == 2
    fresh = fakes.made[1]
    assert fresh.started
    await asyncio.sleep(0)
    assert dead.stopped
    assert fresh.options == {"client_id": "test-relay", "enable_idempotence": True}
    assert await producer.send_and_wait("deals", b"1") == "acknowledged"
    assert fresh.sent == [("deals", b"1")]
    assert dead.sent == []


async def test_a_producer_whose_acknowledgements_fail_for_good_is_replaced_before_the_next_send(
    fakes: type[FakeProducer],
) -> None:
    """What a broker restart did: the sender went on, every batch came back out of order."""
    producer = await _started()
    dead = fakes.made[0]
    dead.fail_ack = OutOfOrderSequenceNumber()
    sent = [await producer.send("deals", b"1"), await producer.send("deals", b"2")]
    results = await asyncio.gather(*sent, return_exceptions=True)
    assert all(isinstance(r, OutOfOrderSequenceNumber) for r in results)
    assert len(fakes.made) == 1  # renewed by the next send, not by a callback
    with pytest.raises(OutOfOrderSequenceNumber):  # that send fails: the batch is given up
        await producer.send("deals", b"3")
    assert len(fakes.made) == 2
    assert fakes.made[1].sent == []  # nothing of the failed batch through the new producer
    assert await producer.send_and_wait("deals", b"1") == "acknowledged"  # the batch again
    assert fakes.made[1].sent == [("deals", b"1")]
    await asyncio.sleep(0)  # the replaced producer closes in the background
    assert dead.stopped


async def test_an_acknowledgement_that_failed_otherwise_replaces_nothing(
    fakes: type[FakeProducer],
) -> None:
    producer = await _started()
    fakes.made[0].fail_ack = KafkaTimeoutError()
    with pytest.raises(KafkaTimeoutError):
        await producer.send_and_wait("deals", b"1")
    fakes.made[0].fail_ack = None
    assert await producer.send_and_wait("deals", b"2") == "acknowledged"
    assert len(fakes.made) == 1


@pytest.mark.parametrize("error", [KafkaTimeoutError(), KafkaConnectionError()])
async def test_an_error_the_producer_recovers_from_replaces_nothing(
    fakes: type[FakeProducer], error: Exception
) -> None:
    producer = await _started()
    fakes.made[0].fail = error
    with pytest.raises(type(error)):
        await producer.send("deals", b"1")
    assert len(fakes.made) == 1
    assert not fakes.made[0].stopped


async def test_callers_that_saw_the_same_producer_give_up_replace_it_once(
    fakes: type[FakeProducer],
) -> None:
    producer = await _started()
    fakes.made[0].fail = OutOfOrderSequenceNumber()
    results = await asyncio.gather(
        producer.send("deals", b"1"), producer.send("deals.dlt", b"2"), return_exceptions=True
    )
    assert all(isinstance(r, OutOfOrderSequenceNumber) for r in results)
    assert len(fakes.made) == 2


async def test_a_replacement_that_cannot_start_is_tried_again_on_the_next_send(
    fakes: type[FakeProducer],
) -> None:
    producer = await _started()
    fakes.made[0].fail = OutOfOrderSequenceNumber()
    fakes.start_fails.append(KafkaConnectionError())  # Kafka still away
    with pytest.raises(KafkaConnectionError):
        await producer.send("deals", b"1")
    assert fakes.made[1].stopped
    assert not fakes.made[0].stopped
    with pytest.raises(OutOfOrderSequenceNumber):
        await producer.send("deals", b"1")
    assert fakes.made[2].started
    await asyncio.sleep(0)
    assert fakes.made[0].stopped
    assert await producer.send_and_wait("deals", b"1") == "acknowledged"


async def test_a_producer_never_started_holds_nothing_and_refuses_to_send(
    fakes: type[FakeProducer],
) -> None:
    producer = Producer(client_id="test-dead-letters")
    assert fakes.made == []
    with pytest.raises(RuntimeError, match="not started"):
        await producer.send("deals.dlt", b"1")
    await producer.stop()  # nothing to close


def test_only_the_errors_after_which_aiokafka_sends_nothing_more_count_as_giving_up() -> None:
    assert gave_up(OutOfOrderSequenceNumber())
    assert gave_up(KafkaError("Unexpected error during batch delivery"))
    assert not gave_up(KafkaTimeoutError())
    assert not gave_up(KafkaConnectionError())
    assert not gave_up(ValueError())
