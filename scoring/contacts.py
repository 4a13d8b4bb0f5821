"""Co-presence of persons with sources (cases, designated areas) for one contact kind.

A `ContactEngine` holds, for one `ContactSpec`, everyone's closed stays (cell-keyed)
and every source's *presence*: for a case, the case's own stays clipped to the
infectious window (and, when the spec counts cell borders, copied into the ring-1
neighbour cells); for a designated area, each of its cells for the time the
designation held. Co-presence of a person with a source is the total overlap of
their stays with the source's presence, cell by cell.

Every overlap is counted once: a new stay is matched against the presence already
known (forward), and new presence against the stays already known (backward),
never both. Because a person's stays are disjoint in time, and so are a case's,
neighbour copies never count the same minutes twice. Corrections (a late ping
that splits a stay, a changed infectious window) recompute the person, or the
source, from scratch, so the result depends only on the inputs, not their order.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from scoring.cells import discs
from scoring.celltable import CellTable, Rows
from scoring.crowd import Crowd, Tallies
from scoring.stays import StayStage

DAY_S = 86_400
OPEN_END = np.iinfo(np.int64).max
"""End of a window still open (a case not yet isolated, a designation without end)."""
EVERY_DAY = int(np.iinfo(np.int64).min)


@dataclass(slots=True)
class Source:
    """A case or a designation period, as one engine sees it."""

    ref: str
    kind: str
    """The exposure kind it causes: the engine's contact kind, or `area`."""
    person: int
    """The case's person number (never matched with itself); -1 for an area."""
    start: int
    end: int
    level: str | None = None
    cells: np.ndarray | None = None
    """For an area: its cells."""
    known_at: int | None = None
    """When the source became known (a case confirmed, an area designated), if told."""


@dataclass(slots=True)
class Tally:
    """Co-presence of one person with one source, in whole seconds (so sums are exact)."""

    seconds: int = 0
    first: int = OPEN_END
    last: int = 0
    by_day: dict[int, int] = field(default_factory=dict)
    changed_from: int = EVERY_DAY
    """The earliest day whose seconds changed since the tally was last reported (a new tally: every day).
    The reader resets it (to `OPEN_END`) when it reports the tally."""


Pairs = list[tuple[int, "Tally | None"]] | tuple[Tallies, np.ndarray]
"""A source's changed pairs: (person, tally now or None if gone), or a crowd's tallies and which are held."""


def split_by_day(
    start: np.ndarray, end: np.ndarray, origin: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut intervals at day boundaries counted from each one's `origin`: (interval number, day, seconds)."""
    which = np.arange(len(start))
    days, seconds, owners = [], [], []
    while len(start):
        day = (start - origin) // DAY_S
        cut = np.minimum(end, origin + (day + 1) * DAY_S)
        owners.append(which)
        days.append(day)
        seconds.append(cut - start)
        more = cut < end
        which, start, end, origin = which[more], cut[more], end[more], origin[more]
    if not owners:
        nothing = np.empty(0, dtype=np.int64)
        return nothing, nothing, nothing
    return np.concatenate(owners), np.concatenate(days), np.concatenate(seconds)


def in_sorted(values: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """`np.isin(values, sorted_set)` for a sorted array of distinct values: one binary search a
    value (`np.isin` makes a pass over `values` per member of a small set, here per case)."""
    if len(sorted_set) == 0:
        return np.zeros(len(values), dtype=bool)
    at = np.minimum(np.searchsorted(sorted_set, values), len(sorted_set) - 1)
    return sorted_set[at] == values


class ContactEngine:
    """Stays, source presence and co-presence tallies for one contact kind."""

    def __init__(
        self,
        kind: str,
        max_gap_s: int,
        include_neighbours: bool,
        owns: Callable[[np.ndarray], np.ndarray] | None = None,
        by_day: bool = True,
    ) -> None:
        """`by_day`: tallies keep seconds by day (`Tally.by_day`); without, only their totals and
        moments (no rule reads the days, see `scoring.presence.PresenceIndex`).

        `owns` tells which cells this engine counts co-presence in (a stream partition's
        own cells); None counts everywhere (one engine for the whole city).

        A partition must also be given the stays of the cells around its own when the
        kind counts neighbours (the ring-1 disc of each stay's cell): a case's stay
        next door is presence in an owned cell, though the stay itself is not counted.
        """
        self.kind = kind
        self.include_neighbours = include_neighbours
        self._owns = owns
        self._by_day = by_day
        self.stays = CellTable()
        self.stage = StayStage(max_gap_s, history=self.stays)
        self.presence = CellTable()
        self.cutoff = np.iinfo(np.int64).min
        self._sources: dict[int, Source] = {}
        self._slot_of: dict[str, int] = {}
        # Per slot (slots are never reused): the case's person (-1 for areas or
        # removed sources) and the window start that day offsets count from.
        self._slot_person = np.empty(0, dtype=np.int64)
        self._slot_start = np.empty(0, dtype=np.int64)
        self._slot_end = np.empty(0, dtype=np.int64)
        self._slots_of_person: dict[int, set[int]] = {}
        self._case_persons = np.empty(0, dtype=np.int64)
        # Every (case person, slot) link, sorted: the stays of a tick find their cases' windows in one search.
        self._link_person = np.empty(0, dtype=np.int64)
        self._link_slot = np.empty(0, dtype=np.int64)
        self._tallies: dict[int, dict[int, Tally]] = {}
        self._crowds: dict[int, Crowd] = {}
        """The tallies of area slots as arrays (`scoring.crowd`), when no days are kept."""
        self._changed: dict[int, set[int]] = {}
        """The persons whose tally changed since the last drain, by slot (a designated district's slot
        changes for each of its residents every tick: sets of ints sort far faster than pairs)."""
        self._gone: dict[tuple[str, int], Source] = {}
        self._gone_crowds: dict[str, tuple[Source, list[np.ndarray]]] = {}
        """The persons of crowds whose source was removed, by ref: reported gone at the next drain."""

    # -- pings and time -------------------------------------------------------

    def ingest(self, person: np.ndarray, ts: np.ndarray, cell: np.ndarray) -> None:
        """Apply pings sorted by (person, ts): person numbers, epoch seconds, cells at this resolution."""
        self.apply_stays(*self.stage.ingest(person, ts, cell))

    def apply_stays(self, added: Rows, withdrawn: Rows | None = None) -> None:
        """Store new closed stays and withdraw corrected ones, then match them.

        This is the cell-keyed entry point: stays may come from this engine's own
        `StayStage` or from a person-keyed stage elsewhere (a partition of a stream
        gets the stays of the cells it owns). Persons who lost stays are
        matched again in full (and their cases rebuilt), so corrections are exact.
        """
        corrected = np.empty(0, dtype=np.int64)
        if withdrawn is not None and len(withdrawn):
            for cell, owner, start in zip(withdrawn.cell.tolist(), withdrawn.owner.tolist(), withdrawn.start.tolist()):
                self.stays.withdraw(cell, owner, start)
            corrected = np.unique(withdrawn.owner)
        self._apply(added, corrected)

    def advance(self, watermark: int) -> None:
        """Close the open stays whose cap the watermark passed."""
        self.apply_stays(self.stage.advance(watermark))

    def next_close(self) -> int | None:
        """The earliest watermark at which `advance` would do anything (None: no stay is open)."""
        return self.stage.tracker.next_cap()

    def expire(self, cutoff: int) -> list[tuple[str, str]]:
        """Delete stays and presence that ended at or before `cutoff`, and sources closed by then.

        Returns the (kind, ref) of sources forgotten (their exposures are final).
        """
        if cutoff <= self.cutoff:
            return []
        self.cutoff = cutoff
        self.stays.drop_ended(cutoff)
        self.presence.drop_ended(cutoff)
        forgotten = []
        for slot in [slot for slot, src in self._sources.items() if src.end <= cutoff]:
            source = self._sources.pop(slot)
            self._unlink(slot)
            self._tallies.pop(slot, None)
            self._crowds.pop(slot, None)
            self.presence.withdraw_owner(slot)
            self._changed.pop(slot, None)
            del self._slot_of[source.ref]
            forgotten.append((source.kind, source.ref))
        return forgotten

    def _apply(self, stays: Rows, corrected: np.ndarray) -> None:
        """Store new stays and match them; persons in `corrected` are matched again in full."""
        stays = stays.take(stays.end > self.cutoff)
        self.stays.append(stays)
        normal = stays.take(~np.isin(stays.owner, corrected)) if len(corrected) else stays
        self._match_stays(normal)
        of_cases = normal.take(in_sorted(normal.owner, self._case_persons))
        if len(of_cases):
            self._add_presence(self._presence_of_cases(of_cases))
        if len(corrected):
            for who in corrected.tolist():
                for slot in sorted(self._slots_of_person.get(who, ())):
                    self._rebuild(slot)
            self._rematch(corrected)

    # -- sources --------------------------------------------------------------

    def set_source(self, source: Source) -> None:
        """Add or replace a source (same ref) and find its co-presence, backward."""
        slot = self._slot_of.get(source.ref)
        if slot is None:
            slot = self._slot_of[source.ref] = len(self._slot_person)
            self._slot_person = np.append(self._slot_person, -1)
            self._slot_start = np.append(self._slot_start, source.start)
            self._slot_end = np.append(self._slot_end, source.end)
            if source.person < 0 and not self._by_day:
                self._crowds[slot] = Crowd()
        else:
            old = self._sources[slot]
            if (old.person, old.start, old.end, old.level, old.known_at) == (
                source.person, source.start, source.end, source.level, source.known_at
            ) and (
                np.array_equal(old.cells, source.cells) if old.cells is not None else source.cells is None
            ):
                return
            self._unlink(slot)
        self._sources[slot] = source
        self._slot_start[slot] = source.start
        self._slot_end[slot] = source.end
        if source.person >= 0:
            self._slot_person[slot] = source.person
            self._slots_of_person.setdefault(source.person, set()).add(slot)
            self._relink()
        self._rebuild(slot)

    def remove_source(self, ref: str) -> None:
        """Withdraw a source: every tally it caused is reported gone."""
        slot = self._slot_of.pop(ref, None)
        if slot is None:
            return
        source = self._sources.pop(slot)
        crowd = self._crowds.pop(slot, None)
        if crowd is not None:
            self._gone_crowds[ref] = (source, [*self._gone_crowds.get(ref, (source, []))[1], crowd.tallies.who])
        for who in self._tallies.pop(slot, {}):
            self._gone[(ref, who)] = source
        self._changed.pop(slot, None)
        self._unlink(slot)
        self.presence.withdraw_owner(slot)

    def _unlink(self, slot: int) -> None:
        who = int(self._slot_person[slot])
        if who >= 0:
            self._slots_of_person[who].discard(slot)
            if not self._slots_of_person[who]:
                del self._slots_of_person[who]
            self._relink()
        self._slot_person[slot] = -1

    def _relink(self) -> None:
        links = sorted((who, slot) for who, slots in self._slots_of_person.items() for slot in slots)
        self._case_persons = np.array(sorted(self._slots_of_person), dtype=np.int64)
        self._link_person = np.array([who for who, _ in links], dtype=np.int64)
        self._link_slot = np.array([slot for _, slot in links], dtype=np.int64)

    def _presence_of_cases(self, stays: Rows) -> Rows:
        """`_case_presence` of every window of every case among the stays' owners, in one pass
        (rows by case person, window, then stay; an outbreak has hundreds of cases a tick)."""
        first = np.searchsorted(self._link_person, stays.owner, side="left")
        count = np.searchsorted(self._link_person, stays.owner, side="right") - first
        which = np.repeat(np.arange(len(stays)), count)
        # Each stay's links, first[i] .. first[i] + count[i] - 1, laid end to end.
        link = np.repeat(first - (np.cumsum(count) - count), count) + np.arange(len(which))
        slot = self._link_slot[link]
        order = np.lexsort((which, slot, stays.owner[which]))
        return self._windowed(stays.take(which[order]), slot[order])

    def _case_presence(self, slot: int, stays: Rows) -> Rows:
        """The presence of the case in `slot`: its stays within its window."""
        return self._windowed(stays, np.full(len(stays), slot, dtype=np.int64))

    def _windowed(self, stays: Rows, slot: np.ndarray) -> Rows:
        """Each stay clipped to the window of the case slot beside it, owned by that slot (and
        copied into the ring-1 neighbours when the kind counts them)."""
        start = np.maximum(stays.start, self._slot_start[slot])
        end = np.minimum(stays.end, self._slot_end[slot])
        inside = end > start
        cell, slot, start, end = stays.cell[inside], slot[inside], start[inside], end[inside]
        if self.include_neighbours:
            near, cell = discs(cell)
            slot, start, end = slot[near], start[near], end[near]
        return Rows(cell, slot, start, end)

    def _rebuild(self, slot: int) -> None:
        source = self._sources[slot]
        crowd = self._crowds.get(slot)
        if crowd is not None:
            crowd.clear()
        else:
            self._changed.setdefault(slot, set()).update(self._tallies.pop(slot, {}))
        self.presence.withdraw_owner(slot)
        if source.person >= 0:
            stays = self.stays.rows_of(np.array([source.person]), source.start, source.end)
            presence = self._case_presence(slot, stays)
        else:
            cells = source.cells if source.cells is not None else np.empty(0, dtype=np.int64)
            presence = Rows(
                cells,
                np.full(len(cells), slot, dtype=np.int64),
                np.full(len(cells), source.start, dtype=np.int64),
                np.full(len(cells), source.end, dtype=np.int64),
            )
        self._add_presence(presence)

    def _rematch(self, persons: np.ndarray) -> None:
        for crowd in self._crowds.values():
            crowd.forget(persons)
        for slot, tallies in self._tallies.items():
            for who in persons.tolist():
                if tallies.pop(who, None) is not None:
                    self._changed.setdefault(slot, set()).add(who)
        self._match_stays(self.stays.rows_of(persons))

    # -- matching -------------------------------------------------------------

    def _match_stays(self, stays: Rows) -> None:
        """Forward: new stays against the presence already known."""
        if self._owns is not None:
            stays = stays.take(self._owns(stays.cell))
        if len(stays) == 0 or len(self.presence) == 0:
            return
        query, presence = self.presence.lookup(stays.cell, stays.start, stays.end)
        contact = stays.owner[query]
        start = np.maximum(stays.start[query], presence.start)
        end = np.minimum(stays.end[query], presence.end)
        real = (end > start) & (contact != self._slot_person[presence.owner])
        self._record(presence.owner[real], contact[real], start[real], end[real])

    def _add_presence(self, presence: Rows) -> None:
        """Backward: new presence of sources (owner = slot) against the stays already known."""
        if self._owns is not None:
            presence = presence.take(self._owns(presence.cell))
        if len(presence) == 0:
            return
        self.presence.append(presence)
        query, stays = self.stays.lookup(presence.cell, presence.start, presence.end)
        slot = presence.owner[query]
        start = np.maximum(stays.start, presence.start[query])
        end = np.minimum(stays.end, presence.end[query])
        real = (end > start) & (stays.owner != self._slot_person[slot])
        self._record(slot[real], stays.owner[real], start[real], end[real])

    def _record(self, slot: np.ndarray, contact: np.ndarray, start: np.ndarray, end: np.ndarray) -> None:
        """Add overlaps to the tallies of their (slot, contact) pairs."""
        if len(slot) == 0:
            return
        by_day = self._by_day
        if by_day:
            which, day, seconds = split_by_day(start, end, self._slot_start[slot])
            slot, contact, start, end = slot[which], contact[which], start[which], end[which]
        else:  # the days are not kept: one group a pair
            day, seconds = np.zeros(len(slot), dtype=np.int64), end - start
        order = np.lexsort((day, contact, slot))
        slot, contact, day, seconds = slot[order], contact[order], day[order], seconds[order]
        head = np.ones(len(slot), dtype=bool)
        head[1:] = (slot[1:] != slot[:-1]) | (contact[1:] != contact[:-1]) | (day[1:] != day[:-1])
        heads = np.flatnonzero(head)
        slot, contact, day = slot[heads], contact[heads], day[heads]
        seconds = np.add.reduceat(seconds, heads)
        first, last = np.minimum.reduceat(start[order], heads), np.maximum.reduceat(end[order], heads)
        if self._crowds:
            # An area's persons, a slice of the groups (they come slot by slot), grow its crowd at once.
            crowd = in_sorted(slot, np.array(sorted(self._crowds), dtype=np.int64))
            if crowd.any():
                of_crowd = np.flatnonzero(crowd)
                bounds = np.flatnonzero(np.diff(slot[of_crowd])) + 1
                for part in np.split(of_crowd, bounds):
                    self._crowds[int(slot[part[0]])].add(contact[part], seconds[part], first[part], last[part])
                rest = ~crowd
                slot, contact, day, seconds, first, last = (a[rest] for a in (slot, contact, day, seconds, first, last))
        groups = zip(slot.tolist(), contact.tolist(), day.tolist(), seconds.tolist(), first.tolist(), last.tolist())
        at_slot = None
        tallies: dict[int, Tally] = {}
        changed: set[int] = set()
        for s, who, d, total, first, last in groups:
            if s != at_slot:  # groups come slot by slot
                at_slot = s
                tallies = self._tallies.setdefault(s, {})
                changed = self._changed.setdefault(s, set())
            tally = tallies.get(who)
            if tally is None:
                tally = tallies[who] = Tally()
            changed.add(who)
            tally.seconds += total
            if by_day:
                tally.by_day[d] = tally.by_day.get(d, 0) + total
                if d < tally.changed_from:
                    tally.changed_from = d
            if first < tally.first:
                tally.first = first
            if last > tally.last:
                tally.last = last

    def probe(self, person: int, start: int, end: int) -> dict[int, Tally]:
        """The co-presence a case of `person` infectious over [start, end) has with the stays
        already closed, by contact: what `set_source` would find backward, recording nothing.

        Stays still open, and stays closing later, are not counted: a lower bound of the tallies."""
        stays = self.stays.rows_of(np.array([person]), start, end)
        first, last = np.maximum(stays.start, start), np.minimum(stays.end, end)
        inside = last > first
        cell, first, last = stays.cell[inside], first[inside], last[inside]
        if self.include_neighbours:
            which, cell = discs(cell)
            first, last = first[which], last[which]
        if self._owns is not None:
            keep = self._owns(cell)
            cell, first, last = cell[keep], first[keep], last[keep]
        tallies: dict[int, Tally] = {}
        if len(cell) == 0:
            return tallies
        query, found = self.stays.lookup(cell, first, last)
        begin, finish = np.maximum(found.start, first[query]), np.minimum(found.end, last[query])
        real = (finish > begin) & (found.owner != person)
        contact, begin, finish = found.owner[real], begin[real], finish[real]
        which, day, seconds = split_by_day(begin, finish, np.full(len(begin), start, dtype=np.int64))
        for who, d, total, a, b in zip(contact[which].tolist(), day.tolist(), seconds.tolist(),
                                      begin[which].tolist(), finish[which].tolist()):
            tally = tallies.setdefault(who, Tally())
            tally.seconds += total
            tally.by_day[d] = tally.by_day.get(d, 0) + total
            tally.first, tally.last = min(tally.first, a), max(tally.last, b)
        return tallies

    def drain(self) -> list[tuple[Source, Pairs]]:
        """The pairs changed since the last drain, by source: (person, tally now or None if gone), or an
        area's crowd's (`Crowd.drain`)."""
        by_slot: dict[int, Pairs] = {}
        gone: dict[str, tuple[Source, Pairs]] = {}
        for (ref, who), source in self._gone.items():
            slot = self._slot_of.get(ref)
            if slot is None:
                gone.setdefault(ref, (source, []))[1].append((who, None))  # type: ignore[union-attr]
            else:
                self._changed.setdefault(slot, set()).add(who)
        for ref, (source, parts) in self._gone_crowds.items():
            who = np.unique(np.concatenate(parts))
            slot = self._slot_of.get(ref)
            if slot is None:
                nothing = np.zeros(len(who), dtype=np.int64)
                gone[ref] = (source, (Tallies(who, nothing, nothing, nothing), np.zeros(len(who), dtype=bool)))
            else:  # the area came back (a new slot, a crowd of its own): its persons are reported again
                self._crowds[slot].touch(who)
        for slot in sorted(set(self._changed) | set(self._crowds)):
            crowd = self._crowds.get(slot)
            if crowd is not None:
                changes = crowd.drain()
                if changes is not None:
                    by_slot[slot] = changes
                continue
            persons = self._changed[slot]
            if persons:
                tallies = self._tallies.get(slot) or {}
                by_slot[slot] = [(who, tallies.get(who)) for who in sorted(persons)]
        self._changed = {}
        self._gone = {}
        self._gone_crowds = {}
        return [*gone.values(), *((self._sources[slot], pairs) for slot, pairs in by_slot.items())]

    @property
    def nbytes(self) -> int:
        """Bytes held by stays and presence rows."""
        return self.stays.nbytes + self.presence.nbytes

    def sources(self) -> int:
        """How many sources (cases, designation periods) are held."""
        return len(self._sources)
