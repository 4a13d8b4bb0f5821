"""Runs of growth: an exposure that only grows reaches person scoring when it starts, and then
what grew of it at most every `REFRESH_S`, rather than every tick.

A resident of a designated district is co-present with it all day: presence finds their
record grown at every tick, 96 a day, nine in ten of an outbreak city's records, and each
cost person scoring a proof. Some kinds the rules read only through when a record became
known and its last contact: no minutes threshold, no clearance (whose tests would be
compared with the last contact), no points weight, and a window of a day or more
(`held_kinds`). For those, a record that only extends the run's newest (same first contact
and level, later last contact, more minutes) waits (`GrowthRuns.tick`), the newest
replacing the one before, until
- the tick's time is `REFRESH_S` past the last contact of the record delivered last: the one
  waiting is delivered, whether the run still grows or stopped (a resident at home all night
  grows nothing until the morning, and delivering at the first quiet tick cost two records a
  run, most of them);
- a record changes the run otherwise (shorter, withdrawn, another designation): the one
  waiting is delivered first, as it would have been;
- or the time loop settles everything (`GrowthRuns.release`).
Every settle comes after a tick, so whatever it assesses is within `REFRESH_S` of the
record delivered, whose window lasts a day or more past its last contact: levels, the
moments they change and the sets of reasons are exactly those of delivering every record
(any `REFRESH_S` up to the shortest window would do; a hypothesis test fails one longer).
What differs is what a line printed during a run says of such a reason: its `since` and
`until` are as of the record delivered last, at most `REFRESH_S` old. Which records wait
depends only on the ticks and their records, so a stream and a replay hold back the same
ones. (A tick skipped as quiet finds no record; what waits is then delivered at the next
tick, before anything is settled there.)
"""

from __future__ import annotations

import heapq

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


def extends(newest: Exposure, record: Exposure) -> bool:
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
        """Exposure id -> (the record delivered last, the newest waiting or None), for runs whose record
        delivered last is less than `REFRESH_S` old: one older is forgotten, its waiting one delivered."""
        self._refresh: list[tuple[int, str]] = []
        """(moment a run's refresh falls due, exposure id), a heap; an entry whose run has since
        delivered another record (or ended) is stale and passed over."""

    def __len__(self) -> int:
        return len(self._runs)

    def tick(self, records: list[Exposure], now: int) -> list[Exposure]:
        """Of the records the tick ending at `now` found, those to deliver now, with the waiting ones of
        runs whose refresh fell due.

        A record waits only while `now` is less than `REFRESH_S` past the last contact of the one
        delivered: every settle comes after a tick, so what it looks at is within `REFRESH_S` of
        that record, whose rules' windows are far longer (`held_kinds`)."""
        if not self.kinds:
            return records
        out: list[Exposure] = []
        runs, kinds = self._runs, self.kinds
        for record in records:
            if record.kind not in kinds:
                out.append(record)
                continue
            exposure_id = record.exposure_id
            run = runs.get(exposure_id)
            if run is not None:
                delivered, waiting = run
                if not extends(waiting or delivered, record):
                    if waiting is not None:
                        out.append(waiting)  # anything else follows it, as it would have every tick
                elif now < delivered.last_at + REFRESH_S:
                    runs[exposure_id] = (delivered, record)
                    continue
            out.append(record)
            self._delivered(record)
        refresh = self._refresh
        while refresh and refresh[0][0] <= now:
            due, exposure_id = heapq.heappop(refresh)
            run = runs.get(exposure_id)
            if run is None or run[0].last_at + REFRESH_S != due:
                continue  # the run delivered another record since, or ended
            if run[1] is None:
                del runs[exposure_id]  # nothing grew since: a record later starts a run of its own
            else:
                out.append(run[1])
                self._delivered(run[1])
        return out

    def _delivered(self, record: Exposure) -> None:
        if record.retracted:
            self._runs.pop(record.exposure_id, None)
            return
        self._runs[record.exposure_id] = (record, None)
        heapq.heappush(self._refresh, (record.last_at + REFRESH_S, record.exposure_id))

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
        self._refresh.clear()
        return waiting
