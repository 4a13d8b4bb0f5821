"""What the stages of the split pipeline send each other (`streams.stages`), and how a receiver
takes each call once from a sender that may send it again (a rebuild sends everything again)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scoring.exposure import ContactSpec, Exposure
from scoring.regions import CallKey, RemotePresence, StayChange
from streams.eventtime import NEVER
from streams.reading import json_object


def due(call: CallKey) -> int:
    """The progress by which a sender has sent `call`: its loop makes a flush before `before`
    once advanced to `before - 1`, an expiry at `day` likewise, anything else at its moment."""
    moment = int(call[1])  # type: ignore[call-overload]
    return moment - 1 if call[0] in ("ingest", "advance", "expire") else moment


def call_of(raw: list[Any]) -> CallKey:
    """A call key as JSON gave it back (a list)."""
    return tuple(raw)


def stays_json(change: StayChange) -> dict[str, Any]:
    """A stay change as JSON: persons, cells (H3, int64), starts, ends as columns."""
    def columns(stays: tuple[np.ndarray, ...]) -> list[list[Any]]:
        return [stays[0].tolist(), *(np.asarray(c, dtype=np.int64).tolist() for c in stays[1:])]
    return {"kind": change.spec.kind, "added": columns(change.added), "withdrawn": columns(change.withdrawn)}


def stays_of(data: dict[str, Any], specs: Mapping[str, ContactSpec]) -> StayChange:
    """The stay change `stays_json` wrote (`specs`: by contact kind)."""
    def columns(raw: list[list[Any]]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        persons = np.array(raw[0], dtype=object)
        cells, starts, ends = (np.array(column, dtype=np.int64) for column in raw[1:])
        return persons, cells, starts, ends
    return StayChange(specs[data["kind"]], columns(data["added"]), columns(data["withdrawn"]))


def exposure_json(exposure: Exposure) -> dict[str, Any]:
    """An exposure as JSON (minutes are whole seconds / 60: they read back exactly)."""
    return asdict(exposure)


def exposure_of(data: dict[str, Any]) -> Exposure:
    """The exposure `exposure_json` wrote."""
    return Exposure(**{**data, "minutes_by_day": tuple((day, minutes) for day, minutes in data["minutes_by_day"])})


@dataclass
class Upstream:
    """What a receiver knows of one sending partition: its progress and the finals it made."""

    through: int = NEVER
    finals: set[int] = field(default_factory=set)

    def fresh(self, call: CallKey) -> bool:
        """A call not received before (a rebuilt sender sends every call again)."""
        return due(call) > self.through


class Exposures:
    """What the scoring stage takes from `exposures`: the regions' answers, their progress
    and finals, each region partition's calls once (`Upstream`, per person partition: a
    region sends each its own calls)."""

    def __init__(self, partitions: int, owned: frozenset[int], presence: RemotePresence) -> None:
        self.presence = presence
        self.upstream = {(q, r): Upstream() for q in owned for r in range(partitions)}
        self._probes: dict[tuple[CallKey, int, int], dict[int, list[Exposure]]] = {}
        """Early cases' answers: by (call, index, region partition), then person partition."""

    def take(self, partition: int, value: bytes | None) -> tuple[int, int] | None:
        """One message of person partition `partition`; (region partition, how far every owned
        person partition has heard from it), or None for a stranger's bytes."""
        data = json_object(value)
        origin, through = data.get("from"), data.get("through")
        if not isinstance(through, int) or (partition, origin) not in self.upstream:
            return None
        assert isinstance(origin, int)
        upstream = self.upstream[(partition, origin)]
        for raw_call, index, found in data.get("calls", []):
            call = call_of(raw_call)
            if upstream.fresh(call):
                self.presence.receive(origin, call, index, [exposure_of(e) for e in found])
        for day, index, sources in data.get("forgotten", []):
            if upstream.fresh(("expire", day)):
                self.presence.receive_forgotten(day, index, [(kind, ref) for kind, ref in sources])
        for raw_call, index, found in data.get("probes", []):
            # Speculative and replaced as stays close: the latest answer of each partition counts.
            key = (call_of(raw_call), index, origin)
            self._probes.setdefault(key, {})[partition] = [exposure_of(e) for e in found]
            self.presence.receive_probe(origin, key[0], index, [e for q in sorted(self._probes[key])
                                                                 for e in self._probes[key][q]])
        upstream.finals.update(data.get("finals", []))
        upstream.through = max(upstream.through, through)
        return origin, min(u.through for (_, r), u in self.upstream.items() if r == origin)

    def forget_probes(self, through: int) -> None:
        """Early cases known by `through` are scored now: their answers are no longer asked for."""
        self._probes = {key: parts for key, parts in self._probes.items() if int(key[0][1]) > through}  # type: ignore[call-overload]
        self.presence.forget_probes(through)

    def finals(self) -> list[int]:
        """The finals every region partition has made, in order."""
        return sorted(set.intersection(*(upstream.finals for upstream in self.upstream.values())))
