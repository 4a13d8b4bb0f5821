"""A live rule change for 100,000 persons against the batch rescoring path (no broker).

100,000 (quick: 30,000) synthetic persons (`scoring.synthetic`) restored into a `People` under
`rules/default.yaml` and settled to just before the switch (not timed); then
`People.rescore(points.yaml, at)` is timed against the batch path on the same states
(`scoring.batch`: pack, evaluate, full assessments of the persons restricted before or after
only), and signing the changed persons' code records (`streams.issuing.code_record`, which calls
`codes.issue`) with a throwaway Ed25519 key.

    .venv/bin/python -m bench.rule_change            # 100,000 persons
    .venv/bin/python -m bench.rule_change --quick    # 30,000 persons
"""

from __future__ import annotations

import time

import numpy as np

from bench._pipeline import RULES, quick_only, signing_key
from codes import SigningKey
from scoring.batch import pack_states, rescore_packed, restricted_assessments
from scoring.people import People
from scoring.rules import LEVEL_CODE, load_rule_set
from scoring.synthetic import synthetic_states
from streams.issuing import code_record, encode_record

AT = 1_650_000_000


def rule_change(persons: int, key: SigningKey) -> None:
    old, new = load_rule_set(RULES / "default.yaml"), load_rule_set(RULES / "points.yaml")
    start = time.perf_counter()
    states = synthetic_states(persons, AT)
    people = People(old)
    for state in states:
        people.restore(state)
    people.settle_all(AT - 1)
    print(f"persons: {persons:,} synthetic, restored and settled under {old.ref} "
          f"in {time.perf_counter() - start:.1f} s")
    previous = np.array([LEVEL_CODE[state.level] for state in states], dtype=np.int8)
    before = [(state.level, state.reasons) for state in states]

    start = time.perf_counter()
    changes = people.rescore(new, AT)
    people_s = time.perf_counter() - start

    start = time.perf_counter()
    levels = rescore_packed(pack_states(states), new, AT)
    restricted = restricted_assessments(states, new, AT, levels, previous)
    changed = [index for index, assessment in restricted.items() if assessment.status != before[index]]
    batch_s = time.perf_counter() - start

    issued_at = int(time.time())
    start = time.perf_counter()
    for change in changes:
        encode_record(code_record(change, key, issuer="healthcode", issued_at=issued_at, validity_s=12 * 3600))
    sign_s = time.perf_counter() - start

    same = {c.person for c in changes} == {states[i].person for i in changed}
    print(f"  switch {old.ref} -> {new.ref}: {len(changes):,} persons changed level or reasons "
          f"(batch path finds the same persons: {'yes' if same else 'NO'})")
    print(f"  People.rescore (what the worker runs): {people_s:.2f} s, {persons / people_s:,.0f} persons/s")
    print(f"  batch path (pack + evaluate + assess the restricted): {batch_s:.2f} s, "
          f"{persons / batch_s:,.0f} persons/s")
    print(f"  ratio People.rescore / batch path time: {people_s / batch_s:.1f}")
    if changes:
        print(f"  signing {len(changes):,} code records: {sign_s:.2f} s ({len(changes) / sign_s:,.0f} codes/s)")
    print(f"  rule change total for {persons:,} persons (People.rescore + signing): {people_s + sign_s:.2f} s; "
          f"with the batch path: {batch_s + sign_s:.2f} s")


def main(argv: list[str] | None = None) -> None:
    quick = quick_only(argv, __doc__, "30,000 persons instead of 100,000")
    print("[rule change]")
    rule_change(30_000 if quick else 100_000, signing_key())


if __name__ == "__main__":
    main()
