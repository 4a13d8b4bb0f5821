"""What the stages of the split pipeline send each other (`streams.stages`), and how a receiver
takes each call once from a sender that may send it again (a rebuild sends everything again)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from scoring.exposure import ContactSpec, Exposure
from scoring.regions import CallKey, RemotePresence, StayChange
from scoring.rules import RuleSet
from streams import metrics
from streams.eventtime import NEVER
from streams.reading import json_object

log = logging.getLogger(__name__)


class Malformed(ValueError):
    """Not a message a stage sends (anyone who can write to the broker can write to `stays` and
    `exposures`): taken as nothing at all, never half taken, never a crash of the agent."""


def passed_over(topic: str, partition: int, offset: int, error: Malformed) -> None:
    """One line and a count for a message of a stage's topic no stage sent (its content is not
    logged: it may name persons)."""
    metrics.STAGE_MESSAGES_PASSED_OVER.labels(topic).inc()
    log.warning("passed over %s[%d] offset %d, not a stage's message: %s", topic, partition, offset, error)


def due(call: CallKey) -> int:
    """The progress by which a sender has sent `call`: its loop makes a flush before `before`
    once advanced to `before - 1`, an expiry at `day` likewise, anything else at its moment."""
    moment = int(call[1])  # type: ignore[call-overload]
    return moment - 1 if call[0] in ("ingest", "advance", "expire") else moment


def call_of(raw: Any) -> CallKey:
    """A call key as JSON gave it back (a list): a kind, a moment, then plain values."""
    if not (isinstance(raw, list) and len(raw) >= 2 and isinstance(raw[0], str) and type(raw[1]) is int
            and all(value is None or isinstance(value, (str, int, float)) for value in raw)):
        raise Malformed("a call is not a kind, a moment and plain values")
    return tuple(raw)


def _listed(data: dict[str, Any], name: str, width: int) -> list[list[Any]]:
    """`data[name]`: a list of `width`-item lists (none when absent), each led by a call or a moment."""
    items = data.get(name, [])
    if not isinstance(items, list) or not all(isinstance(item, list) and len(item) == width for item in items):
        raise Malformed(f"{name} is not a list of {width}-item lists")
    return items


def _whole(value: Any, what: str) -> int:
    if type(value) is not int:
        raise Malformed(f"{what} is not a whole number")
    return value


@dataclass(frozen=True)
class Sent:
    """One message of a stage on `stays` or `exposures`, read whole before any of it is taken."""

    origin: int
    """The sending partition."""
    rules: list[str]
    """The references of the sender's rule-set history (`rule_refs`): what it sent is meant
    only for receivers on the same history."""
    through: int
    calls: list[tuple[CallKey, int, list[Any]]]
    """(call, plan index, stay changes or exposures)."""
    finals: list[int]
    forgotten: list[tuple[int, int, list[tuple[str, str]]]] = field(default_factory=list)
    probes: list[tuple[CallKey, int, list[Exposure]]] = field(default_factory=list)
    first: int | None = None
    """The latest first ping kept among the truncated `pings` partitions behind this message (retention
    deleted their oldest pings): a rebuild's inputs are complete from there (`streams.horizon`)."""


def _sent(value: bytes | None, found: Callable[[Any], Any], answers: bool) -> Sent:
    """A message of `stays` (`found`: reads a stay change) or, with `answers`, of `exposures`
    (`found`: reads an exposure); Malformed unless every part of it is what a stage sends."""
    data = json_object(value)
    origin, through = _whole(data.get("from"), "from"), _whole(data.get("through"), "through")

    def found_all(raw: Any) -> list[Any]:
        if not isinstance(raw, list):
            raise Malformed("what a call found is not a list")
        return [found(item) for item in raw]

    rules = data.get("rules")
    if not (isinstance(rules, list) and all(isinstance(ref, str) for ref in rules)):
        raise Malformed("rules is not a list of rule set references")
    calls = [(call_of(call), _whole(index, "index"), found_all(items)) for call, index, items in _listed(data, "calls", 3)]
    finals = data.get("finals", [])
    if not isinstance(finals, list):
        raise Malformed("finals is not a list")
    first = data.get("first")
    sent = Sent(origin, rules, through, calls, [_whole(final, "a final") for final in finals],
                first=None if first is None else _whole(first, "first"))
    if answers:
        for day, index, sources in _listed(data, "forgotten", 3):
            if not isinstance(sources, list) or not all(
                    isinstance(s, list) and len(s) == 2 and all(isinstance(v, str) for v in s) for s in sources):
                raise Malformed("forgotten sources are not (kind, reference) pairs")
            sent.forgotten.append((_whole(day, "a day"), _whole(index, "index"), [(kind, ref) for kind, ref in sources]))
        sent.probes.extend((call_of(call), _whole(index, "index"), found_all(items))
                           for call, index, items in _listed(data, "probes", 3))
    return sent


def stays_json(change: StayChange) -> dict[str, Any]:
    """A stay change as JSON: persons, cells (H3, int64), starts, ends as columns."""
    def columns(stays: tuple[np.ndarray, ...]) -> list[list[Any]]:
        return [stays[0].tolist(), *(np.asarray(c, dtype=np.int64).tolist() for c in stays[1:])]
    return {"kind": change.spec.kind, "added": columns(change.added), "withdrawn": columns(change.withdrawn)}


def stays_of(data: Any, specs: Mapping[str, ContactSpec]) -> StayChange:
    """The stay change `stays_json` wrote (`specs`: by contact kind); Malformed if it is not one."""
    def columns(raw: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not (isinstance(raw, list) and len(raw) == 4 and all(isinstance(column, list) for column in raw)
                and len({len(column) for column in raw}) == 1 and all(isinstance(p, str) for p in raw[0])):
            raise Malformed("stays are not four columns of one length, persons first")
        try:
            cells, starts, ends = (np.array(column, dtype=np.int64) for column in raw[1:])
        except (TypeError, ValueError, OverflowError):
            raise Malformed("a stay's cell, start or end is not a 64-bit whole number") from None
        if cells.ndim != 1 or starts.ndim != 1 or ends.ndim != 1:
            raise Malformed("a stay's cell, start or end is a list")
        return np.array(raw[0], dtype=object), cells, starts, ends
    if not isinstance(data, dict) or data.get("kind") not in specs:
        raise Malformed("not a stay change of a contact kind of the rules")
    return StayChange(specs[data["kind"]], columns(data.get("added")), columns(data.get("withdrawn")))


def read_stays(value: bytes | None, specs: Mapping[str, ContactSpec]) -> Sent:
    """A message of `stays`, whole (`specs`: by contact kind); Malformed if no stays stage sent it."""
    return _sent(value, lambda piece: stays_of(piece, specs), answers=False)


def read_exposures(value: bytes | None) -> Sent:
    """A message of `exposures`, whole; Malformed if no presence stage sent it."""
    return _sent(value, exposure_of, answers=True)


def exposure_json(exposure: Exposure) -> dict[str, Any]:
    """An exposure as JSON (minutes are whole seconds / 60: they read back exactly)."""
    return asdict(exposure)


_EXPOSURE_FIELDS: dict[str, tuple[type, ...]] = {
    "exposure_id": (str,), "person": (str,), "kind": (str,), "source": (str,), "first_at": (int,), "last_at": (int,),
    "minutes": (int, float), "minutes_by_day": (list,), "level": (str, type(None)), "retracted": (bool,),
    "known_at": (int, type(None)),
}
"""What `exposure_json` writes of each field of `Exposure`, as JSON reads it back."""


def exposure_of(data: Any) -> Exposure:
    """The exposure `exposure_json` wrote; Malformed if it is not one."""
    if not (isinstance(data, dict) and data.keys() == _EXPOSURE_FIELDS.keys()
            and all(isinstance(data[name], kinds) for name, kinds in _EXPOSURE_FIELDS.items())
            and all(isinstance(pair, list) and len(pair) == 2 and type(pair[0]) is int
                    and isinstance(pair[1], (int, float)) for pair in data["minutes_by_day"])):
        raise Malformed("not an exposure as exposure_json writes one")
    return Exposure(**{**data, "minutes_by_day": tuple((day, minutes) for day, minutes in data["minutes_by_day"])})


def rule_refs(history: Sequence[RuleSet]) -> list[str]:
    """What a stage's messages say of the rule-set history they were made under (`Sent.rules`).

    A new rule set rebuilds every stage from offset 0, so a receiver reads its senders'
    messages of the previous history before those of the new one, for the same calls: made
    under other plans (`index_plans`: a plan more, another index), they are no answer to the
    receiver's calls, and taking them would make the new ones look sent already (`Upstream`).
    A receiver takes only messages made under its own history; a sender on another one is
    rebuilding, or about to be, and sends everything again."""
    return [rules.ref for rules in history]


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

    def __init__(self, partitions: int, owned: frozenset[int], presence: RemotePresence, rules: list[str]) -> None:
        self.presence, self.rules = presence, rules
        self.upstream = {(q, r): Upstream() for q in owned for r in range(partitions)}
        self._probes: dict[tuple[CallKey, int, int], dict[int, list[Exposure]]] = {}
        """Early cases' answers: by (call, index, region partition), then person partition."""

    def take(self, partition: int, value: bytes | None) -> tuple[int, int, int | None]:
        """One message of person partition `partition`; (region partition, how far every owned
        person partition has heard from it, the first ping kept it says of truncated `pings`
        partitions). Malformed (and nothing taken) for a stranger's bytes."""
        sent = read_exposures(value)
        origin = sent.origin
        if (partition, origin) not in self.upstream:
            raise Malformed(f"from {origin}, no region partition")
        if sent.rules != self.rules:
            return origin, self._heard(origin), None
        self._take(partition, sent)
        return origin, self._heard(origin), sent.first

    def _heard(self, origin: int) -> int:
        return min(u.through for (_, r), u in self.upstream.items() if r == origin)

    def _take(self, partition: int, sent: Sent) -> None:
        origin = sent.origin
        upstream = self.upstream[(partition, origin)]
        for call, index, found in sent.calls:
            if upstream.fresh(call):
                self.presence.receive(origin, call, index, found)
        for day, index, sources in sent.forgotten:
            if upstream.fresh(("expire", day)):
                self.presence.receive_forgotten(day, index, sources)
        for call, index, found in sent.probes:
            # Speculative and replaced as stays close: the latest answer of each partition counts.
            key = (call, index, origin)
            self._probes.setdefault(key, {})[partition] = found
            self.presence.receive_probe(origin, key[0], index, [e for q in sorted(self._probes[key])
                                                                 for e in self._probes[key][q]])
        upstream.finals.update(sent.finals)
        upstream.through = max(upstream.through, sent.through)

    def forget_probes(self, through: int) -> None:
        """Early cases known by `through` are scored now: their answers are no longer asked for."""
        self._probes = {key: parts for key, parts in self._probes.items() if int(key[0][1]) > through}  # type: ignore[call-overload]
        self.presence.forget_probes(through)

    def finals(self) -> list[int]:
        """The finals every region partition has made, in order."""
        return sorted(set.intersection(*(upstream.finals for upstream in self.upstream.values())))
