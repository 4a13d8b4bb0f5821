"""The simulation loop: days of slots, each slot moving people, spreading infection
and advancing the health system; each day ends by handing over the events that
have arrived by midnight.

`Simulation(config).blocks()` yields those blocks; afterwards `truth()`,
`designations` and `summary()` describe what really happened.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

import numpy as np
import orjson

from simulators.arrival import ArrivalQueue, Arrived
from simulators.authority import Authority
from simulators.city import City, build_city
from simulators.config import FAULT_KINDS, SimulationConfig
from simulators.faults import disturb, fault_name, mark_content_faults
from simulators.frames import (
    AREA_RISK,
    LOW,
    NO_FAULT,
    PING_COLUMNS,
    TYPES,
    Frame,
    Serials,
    empty,
    records_from_rows,
    size,
)
from simulators.health import HealthSystem
from simulators.mobility import day_plan, local_day
from simulators.pings import day_pings
from simulators.rng import generator
from simulators.transmission import NEVER, Epidemic, seed_infections, transmit

_DAY = 86_400
Observer = Callable[[int, np.ndarray], None]


@dataclass(frozen=True)
class Block:
    """One day's worth of arrived events (the last block holds every straggler)."""

    index: int
    day: int
    events: Arrived
    fault: np.ndarray


@dataclass(frozen=True)
class Designation:
    """An area_risk decision: district index, level code, effective time."""

    ts: int
    district: int
    level: int


def start_epoch(config: SimulationConfig) -> int:
    """Epoch seconds of local midnight on the first simulated day."""
    midnight = datetime(config.start.year, config.start.month, config.start.day, tzinfo=UTC)
    return int(midnight.timestamp()) - config.city.utc_offset_hours * 3_600


def initial_infections(config: SimulationConfig) -> int:
    """How many residents are infected at the start."""
    return config.disease.initial_infections or max(3, config.residents // 1_000)


class Simulation:
    """One deterministic run of the city."""

    def __init__(self, config: SimulationConfig) -> None:
        self.config = config
        self.start = start_epoch(config)
        self.end = self.start + config.days * _DAY
        self.city: City = build_city(config.city, config.residents, config.mobility.gps_share, config.seed)
        self.epidemic = Epidemic.none_infected(config.residents)
        self.serials = Serials()
        self.health = HealthSystem(
            city=self.city,
            epidemic=self.epidemic,
            config=config.health,
            disease=config.disease,
            utc_offset_seconds=config.city.utc_offset_hours * 3_600,
            slot_seconds=config.slot_seconds,
            serials=self.serials,
        )
        self.authority = Authority(len(self.city.districts), config.authority)
        self.designations: list[Designation] = []
        self.events_by_type: Counter[str] = Counter()
        self.faults_by_kind: Counter[str] = Counter()

    def _designate(self, moment: int, changes: list[tuple[int, int]]) -> list[dict[str, int]]:
        rows = []
        for district, level in changes:
            self.designations.append(Designation(moment, district, level))
            serial = int(self.serials.take(1)[0])
            rows.append(
                {"serial": serial, "type": AREA_RISK, "ts": moment, "arrival": moment, "area": district, "level": level}
            )
        return rows

    def _simulate_day(self, day: int, observe: Observer | None) -> tuple[Frame, Frame]:
        config = self.config
        slots, slot_seconds = config.slots_per_day, config.slot_seconds
        day_start = self.start + day * _DAY
        plan = day_plan(
            self.city, config.mobility, local_day(config.start, day), generator(config.seed, "schedule", day)
        )
        spread = generator(config.seed, "transmission", day)
        care = generator(config.seed, "health", day)
        self.health.start_day(day, day_start, care)
        decision = day_start + config.authority.decision_hour * 3_600
        area_rows: list[dict[str, int]] = []
        for slot in range(slots):
            moment = day_start + slot * slot_seconds
            location = plan[slot]
            self.health.relocate(location, moment)
            if observe is not None:
                observe(moment, location)
            infected = transmit(
                self.epidemic,
                self.city,
                location,
                moment,
                config.mobility.ping_interval_minutes,
                config.disease,
                spread,
            )
            self.health.infected(infected, moment)
            self.health.run_until(moment + slot_seconds, care)
            if moment <= decision < moment + slot_seconds:
                area_rows += self._designate(decision, self.authority.decide(decision, self.health.cases))
        pings = day_pings(self.city, config.mobility, plan, day_start, generator(config.seed, "pings", day))
        pings["serial"] = self.serials.take(size(pings))
        records = records_from_rows(self.health.emitted + area_rows)
        self.health.emitted.clear()
        return pings, records

    def _hand_over(self, index: int, day: int, arrived: Arrived) -> Block:
        fault = arrived.fault()
        mark_content_faults(fault, self.config.faults, generator(self.config.seed, "faults", index, 2))
        types = np.concatenate([np.zeros(size(arrived.pings), dtype=np.int8), arrived.records["type"]])[arrived.order]
        for code, count in enumerate(np.bincount(types, minlength=len(TYPES))):
            self.events_by_type[TYPES[code]] += int(count)
        for code, count in enumerate(np.bincount(fault, minlength=len(FAULT_KINDS) + 1)):
            if code != NO_FAULT and count:
                self.faults_by_kind[fault_name(code)] += int(count)
        return Block(index=index, day=day, events=arrived, fault=fault)

    def blocks(self, observe: Observer | None = None) -> Iterator[Block]:
        """Run the simulation, yielding each day's arrived events in arrival order.

        `observe(slot_start, location)` sees where everyone is in each slot (read only),
        for checks that the ground truth matches what happened."""
        config = self.config
        seeded = seed_infections(
            self.epidemic, initial_infections(config), self.start, config.disease, generator(config.seed, "seeding")
        )
        self.health.infected(seeded, self.start)
        queue = ArrivalQueue()
        opening = records_from_rows(self._designate(self.start, [(d, LOW) for d in range(len(self.city.districts))]))
        queue.add(empty(PING_COLUMNS), opening)
        for day in range(config.days):
            pings, records = self._simulate_day(day, observe)
            pings = disturb(pings, config.faults, self.end, generator(config.seed, "faults", day, 0))
            records = disturb(records, config.faults, self.end, generator(config.seed, "faults", day, 1))
            queue.add(pings, records)
            yield self._hand_over(day, day, queue.release(self.start + (day + 1) * _DAY))
        stragglers = queue.release(None)
        if len(stragglers):
            yield self._hand_over(config.days, config.days - 1, stragglers)

    def identity(self) -> dict[str, object]:
        """What names this city: its seed, size and period, and the SHA-256 of every setting.

        The writer stores it in every output (Parquet metadata, city.json), so a backtest
        can tell events and truth of different cities apart (same pseudonyms, other seed).
        """
        from scoring.timeutil import format_rfc3339

        settings = orjson.dumps(self.config.model_dump(mode="json"), option=orjson.OPT_SORT_KEYS)
        return {
            "seed": self.config.seed,
            "residents": self.config.residents,
            "start": format_rfc3339(self.start),
            "end": format_rfc3339(self.end),
            "config_sha256": hashlib.sha256(settings).hexdigest(),
        }

    def summary(self) -> dict[str, object]:
        """Counts that describe the run: residents, infections, cases found, events, faults."""
        infected = self.epidemic.infected_at != NEVER
        return {
            "residents": self.config.residents,
            "days": self.config.days,
            "seed": self.config.seed,
            "initial_infections": int((self.epidemic.infected_at < self.start).sum()),
            "infections": int(infected.sum()),
            "cases_detected": int((self.health.diagnosed_at != NEVER).sum()),
            "events": dict(sorted(self.events_by_type.items())),
            "events_total": int(sum(self.events_by_type.values())),
            "faults": dict(sorted(self.faults_by_kind.items())),
        }
