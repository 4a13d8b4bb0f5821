"""Runs of growth: an exposure that only grows reaches person scoring when it starts, when it
stops growing, and at least every `REFRESH_S` while it grows, rather than every tick.

A resident of a designated district is co-present with it all day: presence finds their
record grown at every tick, 96 a day, nine in ten of an outbreak city's records, and each
cost person scoring a proof. Some kinds the rules read only through when a record became
known and its last contact: no minutes threshold, no clearance (whose tests would be
compared with the last contact), no points weight, and a window of a day or more
(`held_kinds`). For those, a record that only extends the run's newest (same first contact
and level, later last contact, more minutes) waits (`GrowthRuns.tick`), the newest
replacing the one before, until
- a tick finds nothing new for the run: the one waiting is delivered, the very record
  every tick would have left in force;
- the tick's time is `REFRESH_S` past the last contact of the record delivered last;
- a record changes the run otherwise (shorter, withdrawn, another designation): the one
  waiting is delivered first, as it would have been;
- or the time loop settles everything (`GrowthRuns.release`).
Every settle comes after a tick, so whatever it assesses is within `REFRESH_S` of the
record delivered, whose window lasts a day or more past its last contact: levels, the
moments they change and the sets of reasons are exactly those of delivering every record
(any `REFRESH_S` up to the shortest window would do; a hypothesis test fails one longer).
What differs is what a line printed during a run says of such a reason: its `since` and
`until` are as of the record delivered last, at most `REFRESH_S` old. Which records wait
depends only on the ticks and their records, so a stream and a replay hold back the same ones.
"""

from __future__ import annotations

from scoring.exposure import Exposure
from scoring.rules import CASE, FEVER_CLINIC, RuleSet

REFRESH_S = 6 * 3600
"""The longest a growing run goes without a record delivered. Each delivery costs person scoring a
proof for every resident of a designated district: hourly, they were three in four of an outbreak
city's records. Six hours keeps what a reason's `until` shows meanwhile within a quarter of a day."""
_SHORTEST_WINDOW_S = 24 * 3600
"""Rules of a held kind give their level for at least this long after a record's last contact."""


def held_kinds(rules: RuleSet) -> frozenset[str]:
    """The exposure kinds whose growth may wait under `rules` (see the module's docstring)."""
    weighed = {kind for points in rules.points_rules for kind in points.kind_weights}
    kinds = {rule.signal for rule in rules.rules} - {CASE, FEVER_CLINIC} - weighed
    return frozenset(
        kind for kind in kinds
        if all(r.minutes is None and not r.clears and r.window >= _SHORTEST_WINDOW_S for r in rules.rules_of(kind))
    )


def _extends(newest: Exposure, record: Exposure) -> bool:
    """True when `record` only extends `newest` (the run's newest record): its successor every tick."""
    return (
        not record.retracted
        and record.first_at == newest.first_at
        and record.level == newest.level
        and record.last_at >= newest.last_at
        and record.minutes >= newest.minutes
    )


class GrowthRuns:
    """The records of held kinds waiting to be delivered, by exposure id, with the one delivered last."""

    def __init__(self, kinds: frozenset[str]) -> None:
        self.kinds = kinds
        self._runs: dict[str, tuple[Exposure, Exposure | None]] = {}
        """Exposure id -> (the record delivered last, the newest waiting or None), for runs the
        last tick grew: a run that stops growing is forgotten once its record is delivered."""

    def __len__(self) -> int:
        return len(self._runs)

    def tick(self, records: list[Exposure], now: int) -> list[Exposure]:
        """Of the records the tick ending at `now` found, those to deliver now, with the waiting ones of
        runs it did not grow.

        A record waits only while `now` is less than `REFRESH_S` past the last contact of the one
        delivered: every settle comes after a tick, so what it looks at is within `REFRESH_S` of
        that record, whose rules' windows are far longer (`held_kinds`)."""
        if not self.kinds:
            return records
        out: list[Exposure] = []
        grown: set[str] = set()
        runs, kinds = self._runs, self.kinds
        for record in records:
            if record.kind not in kinds:
                out.append(record)
                continue
            exposure_id = record.exposure_id
            grown.add(exposure_id)
            run = runs.get(exposure_id)
            if run is not None:
                delivered, waiting = run
                if not _extends(waiting or delivered, record):
                    if waiting is not None:
                        out.append(waiting)  # anything else follows it, as it would have every tick
                elif now < delivered.last_at + REFRESH_S:
                    runs[exposure_id] = (delivered, record)
                    continue
            out.append(record)
            if record.retracted:
                runs.pop(exposure_id, None)
            else:
                runs[exposure_id] = (record, None)
        for exposure_id in [e for e in runs if e not in grown]:
            waiting = runs.pop(exposure_id)[1]
            if waiting is not None:
                out.append(waiting)
        return out

    def passing(self, records: list[Exposure]) -> list[Exposure]:
        """Records delivered between ticks (a designation, a case), each after its run's waiting one (the run ends)."""
        out: list[Exposure] = []
        for record in records:
            run = self._runs.pop(record.exposure_id, None)
            if run is not None and run[1] is not None:
                out.append(run[1])
            out.append(record)
        return out

    def release(self) -> list[Exposure]:
        """Every waiting record, runs forgotten (the time loop settles everything next)."""
        waiting = [pending for _, pending in self._runs.values() if pending is not None]
        self._runs.clear()
        return waiting
