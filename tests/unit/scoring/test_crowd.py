"""An area's crowd: tallies as columns, and its records held as `GrowthRuns` holds them, over arrays."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.contacts import Source
from scoring.crowd import Crowd, Tallies
from scoring.crowd_runs import CrowdReports
from scoring.exposure import AREA, Exposure
from scoring.runs import REFRESH_S, GrowthRuns

T0 = 1_648_800_000
TICK = 15 * 60
NAMES = [f"p{n}" for n in range(8)]


def _ints(*values: int) -> np.ndarray:
    return np.array(values, dtype=np.int64)


def _drained(crowd: Crowd) -> dict[int, tuple[int, int, int] | None]:
    changes = crowd.drain()
    if changes is None:
        return {}
    tallies, held = changes
    return {who: (s, f, l) if there else None for who, there, s, f, l in zip(
        tallies.who.tolist(), held.tolist(), tallies.seconds.tolist(), tallies.first.tolist(), tallies.last.tolist())}


def test_a_crowd_sums_seconds_and_widens_contacts_and_tells_who_changed_since_the_last_drain() -> None:
    crowd = Crowd()
    crowd.add(_ints(3, 5), _ints(60, 120), _ints(100, 200), _ints(160, 320))
    assert _drained(crowd) == {3: (60, 100, 160), 5: (120, 200, 320)}
    assert crowd.drain() is None
    crowd.add(_ints(1, 5), _ints(30, 60), _ints(50, 90), _ints(80, 400))
    assert _drained(crowd) == {1: (30, 50, 80), 5: (180, 90, 400)}
    crowd.forget(_ints(3, 4))  # 4 was never there
    crowd.touch(_ints(1))
    assert _drained(crowd) == {1: (30, 50, 80), 3: None}
    crowd.clear()
    assert _drained(crowd) == {1: None, 5: None}
    assert len(crowd) == 0


# -- held over arrays as `GrowthRuns` holds record by record -------------------------------------------

_SOURCE = Source("district-3", AREA, -1, T0, 2**62, "high", known_at=T0)
HOUR = 3600

_steps = st.lists(
    st.one_of(
        # A tick: two drains (pings taken in, then time passing), each growing some persons, now and then
        # shrinking one (a late ping) or losing one (gone), then what falls due.
        st.tuples(st.just("tick"), st.integers(1, 30),
                  st.lists(st.lists(st.tuples(st.integers(0, 7), st.sampled_from(["grow", "grow", "grow", "idle",
                                                                                   "shrink", "earlier", "gone"])),
                                    max_size=6), min_size=2, max_size=2)),
        # A designation or a case between ticks: what it finds passes, after what waits.
        st.tuples(st.just("passing"), st.just(0), st.lists(st.lists(st.tuples(st.integers(0, 7), st.just("grow")),
                                                                    max_size=3), min_size=1, max_size=1)),
        # The area's period changed (level, or when it became known): every person is reported again. Or it
        # was withdrawn: every person is gone.
        st.tuples(st.just("source"), st.sampled_from(["high", "medium"]), st.sampled_from([None, 0, 2, 30])),
        st.tuples(st.just("withdrawn"), st.just(0), st.just(None)),
    ),
    min_size=1, max_size=40,
)


def _grown(tallies: dict[int, list[int]], changes: list[tuple[int, str]], now: int) -> tuple[np.ndarray, ...]:
    """Apply the changes to the tallies (seconds, first, last) of a crowd; the drain's columns."""
    touched: dict[int, bool] = {}
    for who, change in changes:
        tally = tallies.get(who)
        if change == "gone" or (tally is None and change in ("shrink", "idle")):
            tallies.pop(who, None)
        elif tally is None:
            tallies[who] = [TICK, now - TICK, now]
        elif change == "grow":
            tally[0] += TICK
            tally[2] = now
        elif change == "shrink":
            tally[0] = max(tally[0] - 60, 0)
        elif change == "earlier":
            tally[1] -= 60
            tally[0] += 60
        touched[who] = True
    who = np.array(sorted(touched), dtype=np.int64)
    rows = [tallies.get(w, [0, 0, 0]) for w in who.tolist()]
    held = np.array([w in tallies for w in who.tolist()], dtype=bool)
    seconds, first, last = (np.array([row[i] for row in rows], dtype=np.int64).reshape(-1) for i in range(3))
    return who, seconds, first, last, held


def _order(records: list[Exposure]) -> list[tuple]:
    # The time loop delivers a tick's records sorted by (known_at, person, id), stably: per person, in order.
    return [(e.known_at, e.person, e.first_at, e.last_at, e.minutes, e.level, e.retracted) for e in sorted(
        records, key=lambda e: (e.effective_from, e.person))]


@settings(max_examples=300, deadline=None)
@given(_steps)
def test_a_crowd_held_over_arrays_delivers_what_growth_runs_deliver_given_every_record(steps) -> None:
    held_here, every, runs = CrowdReports(AREA, "district-3"), CrowdReports(AREA, "district-3"), GrowthRuns(
        frozenset({AREA}))
    tallies: dict[int, list[int]] = {}
    now, source = T0, _SOURCE
    for kind, ticks, drains in steps:
        now += ticks * TICK if kind == "tick" else 0
        if kind == "source":
            known = None if drains is None else T0 + drains * HOUR
            source = Source("district-3", AREA, -1, T0, 2**62, ticks, known_at=known)
            drains = [[(who, "idle") for who in tallies]]
        elif kind == "withdrawn":
            drains = [[(who, "gone") for who in tallies]]
        here: list[Exposure] = []
        found: list[Exposure] = []
        for changes in drains:
            who, seconds, first, last, held = _grown(tallies, changes, now)
            columns = Tallies(who, seconds, first, last)
            tick = now if kind == "tick" else None
            here += held_here.report(source, columns, held, NAMES, tick, hold=True)
            found += every.report(source, columns, held, NAMES, tick, hold=False)
        if kind == "tick":
            here += held_here.refresh(NAMES, now)
            given = runs.tick(found, now)
        else:
            given = runs.passing(found)
        assert _order(here) == _order(given)
    assert _order(held_here.release(NAMES)) == _order(runs.release())
    assert sorted(held_here.records(NAMES), key=lambda e: e.person) == sorted(
        every.records(NAMES), key=lambda e: e.person)


def test_growth_waits_until_the_tick_is_a_refresh_past_the_last_contact_delivered() -> None:
    crowd = CrowdReports(AREA, "district-3")
    start = T0 + TICK

    def grow(now: int) -> list[Exposure]:
        columns = Tallies(_ints(0), _ints(now - T0), _ints(T0), _ints(now))
        return crowd.report(_SOURCE, columns, np.array([True]), NAMES, now, hold=True) + crowd.refresh(NAMES, now)

    assert [e.last_at for e in grow(start)] == [start]
    assert grow(start + TICK) == []
    # The refresh falls due at the tick exactly REFRESH_S past the last contact delivered: what waits goes then.
    ticks = [start + n * TICK for n in range(2, REFRESH_S // TICK + 1)]
    delivered = [e.last_at for now in ticks for e in grow(now)]
    assert delivered == [start + REFRESH_S]
