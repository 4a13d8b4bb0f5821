"""No single event stalls, crashes or slows the pipeline beyond its own cost.

Hostile messages (times from year 1 to 9999, ids with any characters, keys given
twice, huge or finely drawn areas, broken JSON) go through intake as a worker takes
them, and what intake lets through goes through the core, with a switch of rule sets
(which repacks every person's facts). Nothing may raise; every reason must be
printable; and the work must follow the events, not the span of time or space they
name: ticks processed (the core's unit of time work) and area cells filled are
counted, never wall time.
"""

from __future__ import annotations

import math
import unicodedata
from pathlib import Path

import h3.api.basic_int as h3i
import orjson
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scoring.city import CityScorer
from scoring.events import AreaRisk, Ping, TestResult, Visit, decode_event
from scoring.limits import LATEST, EventLimits, moment_text
from scoring.rules import RuleSet, load_rule_set
from scoring.timeutil import format_rfc3339, to_epoch
from streams.deadletter import Rejected
from streams.intake import triage

RULES = Path(__file__).resolve().parents[2] / "rules"
DEFAULT = load_rule_set(RULES / "default.yaml")
NOW = 1_648_800_000  # 2022-04-01T08:00:00Z: the intake clock
DAY = 86_400
FIRST, LAST = -62_135_596_800, 253_402_300_799  # 0001-01-01 .. 9999-12-31T23:59:59Z
LIMITS = EventLimits(area_max_vertices=400, area_max_km2=20.0, area_max_perimeter_km=50.0)
"""Smaller areas than the defaults, so that a hundred examples fill in seconds; the bounds work alike."""
RESOLUTION = max(spec.resolution for spec in DEFAULT.contact_specs())
UNPRINTABLE = {"Cc", "Cf", "Zl", "Zp", "Co", "Cs"}
TICKS_PER_EVENT = 20
"""Each event may need a few ticks of its own (its pings' tick, their stays' close, each
person's moments); stepping through the span between them would need millions."""


def _points_from(valid_from: int) -> RuleSet:
    document = yaml.safe_load((RULES / "points.yaml").read_text())
    document["valid_from"] = format_rfc3339(valid_from)
    return RuleSet.from_mapping(document, "points.yaml")


POINTS = _points_from(NOW - DAY)


def _most_cells(limits: EventLimits) -> int:
    """Cells the largest area intake accepts may fill, with room for H3's cells being uneven."""
    inside = limits.area_max_km2 / h3i.average_hexagon_area(RESOLUTION, "km^2")
    edges = limits.area_max_perimeter_km / h3i.average_hexagon_edge_length(RESOLUTION, "km")
    return math.ceil(2 * inside + 3 * edges) + 1


def mostly(usual: st.SearchStrategy, hostile: st.SearchStrategy) -> st.SearchStrategy:
    """`usual` four times in five: most messages break one thing, not everything."""
    return st.integers(0, 4).flatmap(lambda n: hostile if n == 0 else usual)


moments = mostly(
    st.integers(NOW - 30 * DAY, NOW + DAY),
    st.one_of(st.integers(FIRST, LAST), st.sampled_from([FIRST, LAST, NOW + DAY + 1, 946_684_799, 946_684_800])),
)
texts = st.one_of(st.text(max_size=70), st.sampled_from(["e\u0000", "e\u200b", "\ufeff", "e\u202e", "a\u001b[2J"]))
ids = mostly(st.uuids().map(str), texts)
names = mostly(st.sampled_from(["Clinic 3", "Wuchang", "事件"]), texts)
persons = mostly(st.sampled_from(["p1", "p2", "p3", "case"]), texts)
places = st.tuples(st.floats(30.0, 30.01), st.floats(114.0, 114.01))


@st.composite
def rings(draw) -> list[list[float]]:
    """Closed rings from a few positions to hundreds, from metres to continents across."""
    count = draw(mostly(st.integers(3, 12), st.integers(3, 450)))
    spread = draw(mostly(st.sampled_from([1e-4, 1e-3, 1e-2]), st.sampled_from([0.3, 5.0, 90.0])))
    lon0, lat0 = draw(mostly(st.tuples(st.floats(114.0, 114.01), st.floats(30.0, 30.01)),
                             st.tuples(st.floats(-180, 180), st.floats(-85, 85))))
    offsets = draw(st.lists(st.tuples(st.floats(-1, 1), st.floats(-1, 1)), min_size=count, max_size=count))
    ring = [[max(-180.0, min(180.0, lon0 + dx * spread)), max(-90.0, min(90.0, lat0 + dy * spread))] for dx, dy in offsets]
    return ring + [ring[0]]


@st.composite
def events(draw) -> tuple[str, dict]:
    kind = draw(st.sampled_from(["ping", "ping", "visit", "test_result", "area_risk"]))
    base = {"type": kind, "event_id": draw(ids), "ts": moment_text(draw(moments))}
    if kind == "ping":
        lat, lon = draw(places)
        return "hc.pings", {**base, "person": draw(persons), "lat": lat, "lon": lon, "source": "gps"}
    if kind == "visit":
        return "hc.visits", {**base, "person": draw(persons), "facility": draw(names), "kind": draw(
            st.sampled_from(["fever_clinic", "diagnosis", "recovery"]))}
    if kind == "test_result":
        return "hc.visits", {**base, "person": draw(persons), "sampled_at": moment_text(draw(moments)), "test": "pcr",
                             "result": draw(st.sampled_from(["positive", "negative"]))}
    return "hc.areas", {**base, "area": draw(names), "level": draw(st.sampled_from(["low", "medium", "high"])),
                        "geometry": {"type": "Polygon", "coordinates": [draw(rings())]}}


@st.composite
def messages(draw) -> tuple[str, bytes]:
    topic, event = draw(events())
    raw = orjson.dumps(event)
    damage = draw(mostly(st.just("none"), st.sampled_from(["repeat a key", "repeat a key", "cut", "garbage"])))
    if damage == "repeat a key":
        key = draw(st.sampled_from(sorted(event)))
        raw = raw[:-1] + b"," + orjson.dumps({key: event[key]})[1:]
    elif damage == "cut":
        raw = raw[: draw(st.integers(0, len(raw)))]
    elif damage == "garbage":
        raw = draw(st.binary(max_size=40))
    return topic, raw


def _printable(text: str) -> bool:
    return not any(unicodedata.category(char) in UNPRINTABLE for char in text)


def _score(accepted: list[Ping | Visit | TestResult | AreaRisk]) -> CityScorer:
    """The core over `accepted` in event-time order, under rules that switch a day before the intake clock."""
    scorer = CityScorer([DEFAULT, POINTS])
    for event in sorted(accepted, key=lambda e: to_epoch(e.ts)):
        scorer.add_event(event)
    for change in scorer.finish():
        change.to_json()
    return scorer


hostile = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@hostile
@given(st.lists(messages(), max_size=20))
def test_hostile_messages_are_dead_lettered_or_scored_at_bounded_cost(batch: list[tuple[str, bytes]]) -> None:
    accepted = []
    for offset, (topic, raw) in enumerate(batch):
        outcome = triage(raw, topic, 0, offset, now=NOW, limits=LIMITS)
        if isinstance(outcome, Rejected):
            assert _printable(outcome.reason), outcome.reason
            assert Rejected.from_bytes(outcome.to_bytes()) == outcome
            continue
        times = [to_epoch(outcome.ts)] + ([to_epoch(outcome.sampled_at)] if isinstance(outcome, TestResult) else [])
        assert all(LIMITS.earliest <= t <= NOW + LIMITS.ahead_s for t in times)
        accepted.append(outcome)
    scorer = _score(accepted)
    assert scorer.counts.ticks <= TICKS_PER_EVENT * len(accepted) + 10
    designations = sum(isinstance(event, AreaRisk) for event in accepted)
    assert scorer.area_cells_filled <= designations * _most_cells(LIMITS) * 2  # two indexes: two contact definitions


@hostile
@given(st.lists(events(), max_size=15))
def test_the_core_alone_copes_with_any_time_short_of_the_last_millennium(drawn: list[tuple[str, dict]]) -> None:
    # Intake's floor switched off (only `LATEST`, kept for the sake of writing times, holds):
    # the core must neither step through the years between nor fail to pack facts that far apart.
    accepted = []
    for _, event in drawn:
        event = {**event, "event_id": "e", "person": "p1"} if "person" in event else {**event, "event_id": "e"}
        if event["type"] == "area_risk":
            event["geometry"] = {"type": "Polygon", "coordinates": [[[114.0, 30.0], [114.001, 30.0], [114.0, 30.001],
                                                                      [114.0, 30.0]]]}
            event["area"] = "a"
        if event["type"] == "visit":
            event["facility"] = "h"
        event["ts"] = min(event["ts"], moment_text(LATEST))  # the texts are all four-digit years
        if event["type"] == "test_result":
            event["sampled_at"] = min(event["sampled_at"], event["ts"])
        model = {"ping": Ping, "visit": Visit, "test_result": TestResult, "area_risk": AreaRisk}[event["type"]]
        accepted.append(model.model_validate_json(orjson.dumps(event)))
    scorer = _score(accepted)
    assert scorer.counts.ticks <= TICKS_PER_EVENT * len(accepted) + 10


def test_an_area_intake_would_refuse_is_refused_by_the_core_too_whatever_the_resolution() -> None:
    # A rule set may ask for finer cells than intake's km2 bound was sized for: the core has its own.
    huge = decode_event(orjson.dumps({
        "type": "area_risk", "event_id": "a", "ts": moment_text(NOW), "area": "x", "level": "high",
        "geometry": {"type": "Polygon", "coordinates": [[[100, 20], [110, 20], [110, 30], [100, 30], [100, 20]]]},
    }))
    scorer = CityScorer(DEFAULT)
    scorer.add_event(huge)
    assert scorer.area_cells_filled == 0
    assert scorer.counts.refused == [("a", scorer.counts.refused[0][1])]
    assert scorer.counts.refused[0][1].startswith("area too large: about ")
