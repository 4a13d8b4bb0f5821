"""The garbage collector is tuned for scoring: young passes rarer, never more frequent than set."""

import gc

import pytest

from healthcode.collector import YOUNG_GENERATION, tune_for_scoring


@pytest.fixture
def thresholds():
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)


def test_tuning_makes_young_passes_rarer_and_keeps_the_older_generations(thresholds):
    gc.set_threshold(700, 10, 10)
    tune_for_scoring()
    assert gc.get_threshold() == (YOUNG_GENERATION, 10, 10)


def test_tuning_never_makes_collection_more_frequent_than_already_set(thresholds):
    gc.set_threshold(YOUNG_GENERATION * 3, 20, 5)
    tune_for_scoring()
    assert gc.get_threshold() == (YOUNG_GENERATION * 3, 20, 5)
