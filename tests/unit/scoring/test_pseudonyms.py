"""Numbering pseudonyms: coded persons are numbered exactly as their names would be."""

from __future__ import annotations

import numpy as np

from scoring.pseudonyms import Coded, Numbering, Roster, joined


def test_coded_persons_are_numbered_in_the_order_their_names_would_be() -> None:
    roster = Roster()
    batches = [["b", "a", "b", "c"], ["d", "a", "e"], ["e", "f", "b"]]
    by_name, by_code = Numbering(), Numbering()
    by_name.numbers(["a"]), by_code.numbers(["a"])  # a case told by name before any ping
    for batch in batches:
        coded = Coded(roster.codes(batch), roster)
        assert by_code.numbers(coded).tolist() == by_name.numbers(batch).tolist()
    assert by_code.names == by_name.names == ["a", "b", "c", "d", "e", "f"]
    assert by_code.find("e") == 4 and by_code.find("nobody") == -1


def test_a_roster_codes_each_name_once_and_grows() -> None:
    roster = Roster()
    assert roster.codes(["x", "y", "x"]).tolist() == [0, 1, 0]
    assert roster.code("z") == 2 and len(roster) == 3
    numbering = Numbering()
    assert numbering.numbers(Coded(np.array([2, 0]), roster)).tolist() == [0, 1]
    roster.codes(["w"])  # the roster grew since the numbering last saw it
    assert numbering.numbers(Coded(np.array([3, 2]), roster)).tolist() == [2, 0]


def test_joined_persons_stay_coded_only_when_every_part_is_coded_alike() -> None:
    roster = Roster()
    first, second = Coded(roster.codes(["a", "b"]), roster), Coded(roster.codes(["c"]), roster)
    together = joined([first, second[np.array([0])]])
    assert isinstance(together, Coded) and together.names().tolist() == ["a", "b", "c"]
    other = Roster()
    mixed = joined([first, np.array(["d"], dtype=object), Coded(other.codes(["e"]), other)])
    assert not isinstance(mixed, Coded) and mixed.tolist() == ["a", "b", "d", "e"]
