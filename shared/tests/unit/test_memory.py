import gc
from collections.abc import Iterator

import pytest
from clientele_shared.memory import GC_GENERATION_THRESHOLDS, tune_garbage_collector


@pytest.fixture
def restored_collector() -> Iterator[None]:
    before = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*before)


@pytest.mark.usefixtures("restored_collector")
def test_start_up_objects_are_frozen_and_young_collections_are_rarer() -> None:
    gc.unfreeze()
    survivor = {"allocated": "before start-up ended"}

    tune_garbage_collector(123_456)

    assert gc.get_threshold() == (123_456, *GC_GENERATION_THRESHOLDS)
    assert gc.get_freeze_count() > 0
    # frozen: out of the collector's sight
    assert not any(obj is survivor for obj in gc.get_objects())
