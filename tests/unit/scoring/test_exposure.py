"""Exposure records: the fast builder presence uses makes exactly the record the class makes."""

from __future__ import annotations

from dataclasses import FrozenInstanceError, astuple, fields, replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.exposure import Exposure, exposure_record, known_from

_values = st.tuples(
    st.text(max_size=8), st.text(max_size=8), st.sampled_from(["close_contact", "companion", "area"]), st.text(max_size=8),
    st.integers(0, 2**40), st.integers(0, 2**40), st.floats(0, 1e6, allow_nan=False),
    st.lists(st.tuples(st.integers(-3, 40), st.floats(0, 1440, allow_nan=False)), max_size=4).map(tuple),
    st.sampled_from([None, "medium", "high"]), st.booleans(), st.none() | st.integers(0, 2**40),
)


@given(_values)
def test_a_record_built_fast_equals_hashes_and_reads_as_the_one_the_class_builds(values) -> None:
    built = exposure_record(*values)
    expected = Exposure(*values)
    assert len(values) == len(fields(Exposure))  # a new field must be given to both
    assert built == expected and hash(built) == hash(expected) and repr(built) == repr(expected)
    assert astuple(built) == values
    assert built.effective_from == expected.effective_from


def test_a_record_built_fast_is_frozen_too() -> None:
    built = exposure_record("e", "p", "area", "s", 1, 2, 1.0, ((0, 1.0),), "high", False, 2)
    with pytest.raises(FrozenInstanceError):
        built.minutes = 5.0  # type: ignore[misc]


@given(_values, st.integers(0, 2**40))
def test_a_record_known_from_a_moment_is_the_record_replaced_with_that_known_at(values, moment) -> None:
    record = Exposure(*values)
    assert known_from(record, moment) == replace(record, known_at=moment)
