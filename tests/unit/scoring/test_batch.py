"""Batch rescoring gives exactly the per-person levels."""

import pickle
from pathlib import Path

import numpy as np
import pytest

from scoring.assess import assess
from scoring.batch import pack_states, rescore, rescore_packed, restricted_assessments
from scoring.rules import LEVEL_CODE, load_rule_set
from scoring.state import PersonState, ResultFact, new_state
from scoring.synthetic import DAY, synthetic_states

ROOT = Path(__file__).resolve().parents[3] / "rules"
AT = 1_650_000_000


@pytest.mark.parametrize("name", ["default", "points"])
def test_batch_levels_equal_per_person_levels_on_a_synthetic_city(name):
    rules = load_rule_set(ROOT / f"{name}.yaml")
    states = synthetic_states(3000, AT, seed=11)
    for at in (AT - 5 * DAY, AT, AT + 3 * DAY, AT + 20 * DAY):
        expected = [LEVEL_CODE[assess(state, rules, at).level] for state in states]
        assert rescore(states, rules, at).tolist() == expected


def test_the_synthetic_city_exercises_every_level():
    levels = rescore(synthetic_states(3000, AT, seed=11), load_rule_set(ROOT / "default.yaml"), AT)
    assert set(levels.tolist()) == {0, 1, 2}


def test_one_packing_serves_several_rule_sets():
    states = synthetic_states(500, AT, seed=3)
    packed = pack_states(states)
    for name in ("default", "points"):
        rules = load_rule_set(ROOT / f"{name}.yaml")
        assert rescore_packed(packed, rules, AT).tolist() == rescore(states, rules, AT).tolist()


def test_an_empty_batch_and_persons_without_facts_are_green():
    rules = load_rule_set(ROOT / "default.yaml")
    assert rescore([], rules, AT).tolist() == []
    assert rescore([new_state("a"), new_state("b")], rules, AT).tolist() == [0, 0]


def test_only_persons_restricted_under_either_rule_set_get_full_assessments():
    default = load_rule_set(ROOT / "default.yaml")
    points = load_rule_set(ROOT / "points.yaml")
    states = synthetic_states(400, AT, seed=5)
    before, after = rescore(states, default, AT), rescore(states, points, AT)
    restricted = restricted_assessments(states, points, AT, after, before)
    assert set(restricted) == set(np.flatnonzero((before > 0) | (after > 0)).tolist())
    assert set(np.flatnonzero(before != after).tolist()) < set(restricted)
    assert all(LEVEL_CODE[assessment.level] == after[index] for index, assessment in restricted.items())


def test_a_state_built_directly_is_packed_from_its_facts():
    rules = load_rule_set(ROOT / "default.yaml")
    state = PersonState(person="p", tests={"t": ResultFact(AT - DAY, AT - DAY + 3600, "pcr", True)})
    assert state.records is None
    assert rescore([state], rules, AT).tolist() == [LEVEL_CODE["red"]]


def test_states_restored_from_a_snapshot_pack_like_the_originals():
    rules = load_rule_set(ROOT / "default.yaml")
    states = synthetic_states(300, AT, seed=9)
    restored = pickle.loads(pickle.dumps(states))  # as a worker's snapshot holds them (`streams.resume`)
    assert rescore(restored, rules, AT).tolist() == rescore(states, rules, AT).tolist()


def test_facts_too_far_apart_to_pack_are_rescored_person_by_person_with_the_same_levels():
    rules = load_rule_set(ROOT / "default.yaml")
    states = synthetic_states(50, AT)
    far = new_state("far")
    far.tests["t0"] = ResultFact(-62_135_596_800, AT - DAY, "pcr", True)  # sampled in year 1: limits switched off
    states.append(far)
    with pytest.raises(ValueError, match="136 years"):
        pack_states(states)
    expected = [LEVEL_CODE[assess(state, rules, AT).level] for state in states]
    assert rescore(states, rules, AT).tolist() == expected
