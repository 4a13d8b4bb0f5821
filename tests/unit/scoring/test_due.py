"""The due queue: each person's next moment to settle at, taken in time order."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.due import DueQueue


def test_persons_are_taken_in_time_order_and_only_up_to_the_moment_asked():
    due = DueQueue()
    for person, moment in (("b", 30), ("a", 10), ("c", 20)):
        due.schedule(person, moment)
    assert list(due.take(20)) == ["a", "c"]
    assert (due.at("a"), due.at("b"), due.next()) == (None, 30, 30)


def test_scheduling_keeps_the_earlier_moment():
    due = DueQueue()
    due.schedule("a", 50)
    due.schedule("a", 70)
    due.schedule("a", 40)
    assert due.at("a") == 40
    assert list(due.take(45)) == ["a"] and list(due.take(100)) == []


def test_a_deferred_person_is_not_taken_before_their_new_moment():
    due = DueQueue()
    due.schedule("a", 10)
    due.defer("a", 25)
    assert list(due.take(20)) == []
    assert due.next() == 25
    assert list(due.take(25)) == ["a"]


def test_a_dropped_person_is_never_taken():
    due = DueQueue()
    due.schedule("a", 10)
    due.drop("a")
    assert (list(due.take(100)), due.next()) == ([], None)


def test_defer_refuses_an_earlier_moment():
    due = DueQueue()
    due.schedule("a", 10)
    with pytest.raises(ValueError):
        due.defer("a", 5)


_PERSONS = st.sampled_from(["a", "b", "c", "d"])
_OPS = st.lists(
    st.one_of(
        st.tuples(st.just("schedule"), _PERSONS, st.integers(0, 60)),
        st.tuples(st.just("defer"), _PERSONS, st.integers(0, 30)),
        st.tuples(st.just("drop"), _PERSONS, st.just(0)),
        st.tuples(st.just("take"), st.just(""), st.integers(0, 60)),
    ),
    max_size=60,
)


@settings(max_examples=300, deadline=None)
@given(_OPS)
def test_the_queue_agrees_with_a_plain_table_of_moments(ops):
    due, table = DueQueue(), {}
    for op, person, moment in ops:
        if op == "schedule":
            due.schedule(person, moment)
            table[person] = min(moment, table.get(person, moment))
        elif op == "defer" and person in table:
            due.defer(person, table[person] + moment)
            table[person] += moment
        elif op == "drop":
            due.drop(person)
            table.pop(person, None)
        elif op == "take":
            taken = list(due.take(moment))
            expected = {p for p, at in table.items() if at <= moment}
            assert sorted(taken) == sorted(expected)
            for p in taken:
                del table[p]
        assert due.next() == min(table.values(), default=None)
        assert all(due.at(p) == table.get(p) for p in "abcd")


def test_a_take_stopped_part_way_leaves_the_rest_due():
    due = DueQueue()
    for person in "edcba":
        due.schedule(person, 18)
    taking = due.take(33)
    assert next(taking) == "a"
    taking.close()  # the caller stopped (settling raised)
    assert (due.at("a"), due.at("e"), due.next()) == (None, 18, 18)
    assert list(due.take(33)) == ["b", "c", "d", "e"]
