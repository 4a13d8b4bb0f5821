"""Where a rebuild's published history may start when retention deleted old pings.

A worker rebuilds by reading its inputs from the start. Where the broker deleted old
pings (their retention is the rules' longest window, for privacy), the rebuilt past is
missing contacts until a window after the first ping kept: changes dated before then
were published from complete inputs by an earlier run and stand. With nothing deleted
(the embedded broker keeps everything) the whole rebuilt history counts.

The unsplit step reads every ping itself (`saw_ping`). With the stages, the stays stage of
a truncated `pings` partition tells its first ping downstream with its progress, and each
presence stage passes on the latest it heard of (`reported`): a presence partition passes a
moment only once every pings partition has, so the scoring step knows the horizon before
its watermark passes anything, as the unsplit step does.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.eventtime import NEVER


@dataclass
class RebuildHorizon:
    """The first event time whose rebuilt changes may be published."""

    window_s: int
    """The longest window of the rule history: how far back a level can depend on a ping."""
    truncated: bool = False
    """Some pings partition no longer starts at offset 0."""
    firsts: dict[int, int] = field(default_factory=dict)
    """Per pings partition (unsplit) or presence partition (staged), the first ping kept."""

    def saw_ping(self, partition: int, ts: int) -> None:
        """A ping read on `partition` (only its partition's first one matters)."""
        if self.truncated:
            self.firsts.setdefault(partition, ts)

    def reported(self, region: int, first: int) -> None:
        """Presence partition `region` heard of truncated pings partitions, the latest first ping kept
        among them at `first` (it reports again as it hears of more: the latest counts)."""
        self.truncated = True
        self.firsts[region] = max(first, self.firsts.get(region, first))

    @property
    def publish_from(self) -> int:
        """Changes before this moment are not published again.

        Inputs are complete from the latest first ping of a partition; every partition
        delivers its first ping before the watermark can pass anything, so this is
        settled before the first change is published.
        """
        if not self.truncated or not self.firsts:
            return NEVER
        return max(self.firsts.values()) + self.window_s
