"""The ground truth of a run, one row per resident, and the description of its city.

Truth columns (times are timestamp[s, UTC]; null where it did not happen):
- `person`: pseudonym, as in the events.
- `home_district`: district id of the person's home; `role`: child, worker or at_home.
- `infected_at`: start of the time slot in which the person was infected (before the
  run for imported cases); `infector`: who infected them (null for imported cases);
  `infection_setting`: home, work, school, venue, or imported; `infection_place`: the
  place (kind-number, e.g. `venue-17`) both were in during that slot.
- `infectious_from`, `infectious_until`: the infectious window [from, until).
- `symptom_onset`: null for asymptomatic infections; `asymptomatic`: bool.
- `recovered_at`: end of the illness (may lie after the run).
- `first_positive_at`: when the first positive test result became known.
- `diagnosed_at`: the confirmed diagnosis (the `diagnosis` visit).
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from simulators.city import PLACE_KINDS, ROLES, City, pseudonyms
from simulators.run import Simulation
from simulators.transmission import NEVER, NOBODY, SEEDED

UTC_SECONDS = pa.timestamp("s", tz="UTC")
IMPORTED = "imported"


def _times(seconds: np.ndarray) -> pa.Array:
    return pa.array(seconds, pa.int64(), mask=seconds == NEVER).cast(UTC_SECONDS)


def place_names(city: City) -> list[str]:
    """A readable id for every place: its kind and its number within that kind."""
    first = {kind: int(np.argmax(city.place_kind == kind)) for kind in range(len(PLACE_KINDS))}
    return [f"{PLACE_KINDS[kind]}-{index - first[kind]}" for index, kind in enumerate(city.place_kind.tolist())]


def truth_table(simulation: Simulation) -> pa.Table:
    """One row per resident: what really happened to them."""
    city, epidemic, health = simulation.city, simulation.epidemic, simulation.health
    people = pseudonyms(city.residents)
    infected = epidemic.infected_at != NEVER
    place = epidemic.infection_place
    names = place_names(city)
    setting = [
        None if p == NOBODY else IMPORTED if p == SEEDED else PLACE_KINDS[city.place_kind[p]] for p in place.tolist()
    ]
    return pa.table(
        {
            "person": pa.array(people),
            "home_district": pa.array([city.districts[d].id for d in city.person_district.tolist()]),
            "role": pa.array([ROLES[r] for r in city.person_role.tolist()]),
            "infected_at": _times(epidemic.infected_at),
            "infector": pa.array([people[i] if i >= 0 else None for i in epidemic.infector.tolist()], pa.string()),
            "infection_setting": pa.array(setting, pa.string()),
            "infection_place": pa.array([names[p] if p >= 0 else None for p in place.tolist()], pa.string()),
            "infectious_from": _times(epidemic.infectious_from),
            "infectious_until": _times(epidemic.infectious_until),
            "symptom_onset": _times(epidemic.symptom_onset),
            "asymptomatic": pa.array(epidemic.asymptomatic, mask=~infected),
            "recovered_at": _times(epidemic.recovered_at),
            "first_positive_at": _times(health.first_positive_at),
            "diagnosed_at": _times(health.diagnosed_at),
        }
    )


def city_document(simulation: Simulation) -> dict[str, object]:
    """The map and the run's frame: box, districts, hospitals, places, period, settings."""
    from scoring.timeutil import format_rfc3339

    city, config = simulation.city, simulation.config
    return {
        "name": config.city.name,
        "bbox": {
            "south": config.city.south,
            "west": config.city.west,
            "north": config.city.north,
            "east": config.city.east,
        },
        "utc_offset_hours": config.city.utc_offset_hours,
        "start": format_rfc3339(simulation.start),
        "end": format_rfc3339(simulation.end),
        "ping_interval_minutes": config.mobility.ping_interval_minutes,
        "districts": [{"id": d.id, "name": d.name, "geometry": d.geometry()} for d in city.districts],
        "hospitals": [
            {
                "name": name,
                "lat": float(city.place_lat[p]),
                "lon": float(city.place_lon[p]),
                "district": city.districts[city.place_district[p]].id,
            }
            for name, p in zip(city.hospital_names, city.hospital_places.tolist())
        ],
        "places": city.place_counts(),
        "config": config.model_dump(mode="json"),
        "summary": simulation.summary(),
    }
