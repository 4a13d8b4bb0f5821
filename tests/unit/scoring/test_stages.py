"""The pipeline split in three stages, in one process: stays per ping partition, presence per
region partition, scoring per person. Every stage runs replay's time loop (`CityScorer`) with
its own presence side; fed the same city, the scoring stage's timeline is replay's."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import yaml

from scoring.city import CaseNotice, CityScorer, index_plans
from scoring.events import AreaRisk
from scoring.notices import CaseTracker
from scoring.people import sorted_changes
from scoring.regions import RegionMap, RegionPresence, RemotePresence, StaysPresence, region_resolution
from scoring.eventfile import Inputs, read_events
from scoring.replay import replay
from scoring.rules import RuleSet, load_rule_set
from scoring.timeutil import format_rfc3339
from simulators.config import SimulationConfig
from simulators.output import write_run
from simulators.run import Simulation

RULES = Path(__file__).resolve().parents[3] / "rules"
CITY = SimulationConfig(residents=160, days=3, seed=5)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    return read_events(write_run(Simulation(CITY), tmp_path_factory.mktemp("city")))


def _pings(inputs: Inputs) -> tuple[np.ndarray, ...]:
    """Every ping of a (small) city as columns: names, times, lat, lon, arrival positions."""
    batches = list(inputs.pings.batches())
    return tuple(np.concatenate([getattr(batch, column) for batch in batches])
                 for column in ("persons", "ts", "lat", "lon", "order"))


def _history(inputs: Inputs) -> list[RuleSet]:
    """Default switching to points half way: two contact definitions (two indexes), points' with
    ring-1 neighbours (stays by a region border go to both regions)."""
    default = load_rule_set(RULES / "default.yaml")
    ts = _pings(inputs)[1]
    middle = int((ts.min() + ts.max()) // 2)
    points = yaml.safe_load((RULES / "points.yaml").read_text())
    points["valid_from"] = format_rfc3339(middle + 123)  # not on a tick: the switch flushes on its own
    return [default, RuleSet.from_mapping(points, "points.yaml")]


def _never(person: str) -> bool:
    return False


def split(inputs: Inputs, history: list[RuleSet], ping_partitions: int, region_partitions: int):
    """The timeline the scoring stage settles, with every stage fed all its inputs at once; how
    many partial exposures each region partition sent; the scoring stage's presence side."""
    names, ts, lat, lon, arrival = _pings(inputs)
    order = np.lexsort((arrival, ts))
    others = sorted(inputs.others, key=lambda item: (item[0], item[1]))
    end = max(int(ts.max()), max(moment for moment, _, _ in others))
    plans = index_plans(history)

    # Stays: each ping partition's persons (keyed by person, as on `pings`).
    stays = []
    for partition in range(ping_partitions):
        mine = order[[zlib.crc32(name.encode()) % ping_partitions == partition for name in names[order]]]
        scorer = CityScorer(history, owns=_never, presence=StaysPresence)
        for chunk in np.array_split(mine, 7):  # batches of any size: the loop cuts them into ticks
            scorer.add_pings(names[chunk], ts[chunk], lat[chunk], lon[chunk])
        scorer.advance_to(end, final=True)
        stays.append(scorer.presence)

    # Case notices, as the scoring stage's owners announce them on `cases`.
    tracker = CaseTracker(history)
    notices = [(n.known_at, n) for _, _, e in others if not isinstance(e, AreaRisk) for n in tracker.apply(e)]

    # Regions: every stays partition's changes routed to the region partitions they reach.
    regions = RegionMap(region_resolution(spec for plan in plans for spec in plan.specs))
    presences = [RegionPresence(plans, regions.partition_owner(p, region_partitions)) for p in range(region_partitions)]
    for sent in stays:
        for call, index, changes in sent.take():
            routed: dict[int, list] = {}
            for change in changes:
                for partition, part in change.by_partition(regions, region_partitions).items():
                    routed.setdefault(partition, []).append(part)
            for partition, parts in routed.items():
                presences[partition].receive(call, index, parts)
    broadcast = sorted([(moment, 1, position, event) for moment, position, event in others
                        if isinstance(event, AreaRisk)] + [(moment, 0, i, n) for i, (moment, n) in enumerate(notices)],
                       key=lambda item: item[:3])
    remote_sides = []
    for presence in presences:
        scorer = CityScorer(history, owns=_never, notices_from_outside=True, presence=lambda plans, p=presence: p)
        for _, _, _, item in broadcast:
            if isinstance(item, CaseNotice):
                scorer.case_notice(item)
            else:
                scorer.add_event(item)
        scorer.advance_to(end, final=True)
        remote_sides.append(presence.take())

    # Scoring: person events, designations, and the regions' partial exposures.
    remote: list[RemotePresence] = []

    def made(plans):
        remote.append(RemotePresence(plans))
        for part, (partials, forgotten) in enumerate(remote_sides):
            for call, index, exposures in partials:
                remote[0].receive(part, call, index, exposures)
            for day, index, sources in forgotten:
                remote[0].receive_forgotten(day, index, sources)
        return remote[0]

    scorer = CityScorer(history, presence=made)
    for _, _, event in others:
        scorer.add_event(event)
    timeline = sorted_changes(scorer.finish(end))
    return timeline, [sum(len(found) for _, _, found in partials) for partials, _ in remote_sides], remote[0]


def test_the_three_stages_settle_the_timeline_replay_settles(inputs: Inputs) -> None:
    history = _history(inputs)
    replayed = replay(inputs, history)
    timeline, sent, remote = split(inputs, history, ping_partitions=3, region_partitions=4)
    assert any(change.level == "red" for change in replayed.timeline)
    signals = {item.get("signal") for change in replayed.timeline for r in change.reasons for item in r.evidence}
    assert {"close_contact", "companion", "weighted_minutes"} & signals, "the city must have contacts, or the split shows nothing"
    assert [c.to_json() for c in timeline] == [c.to_json() for c in replayed.timeline]
    assert remote.pending() == [], "every answer of a region was asked for by the scoring loop"
    assert sum(1 for count in sent if count) >= 2, f"regions must find exposures in two partitions, or no sum is shown: {sent}"

