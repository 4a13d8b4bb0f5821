"""The authority's daily district designations, in the manner of the 9th-edition
protocol (June 2022): a district with cases is designated at once; high risk is
lowered to medium after a run of days without a new case, medium to low after a
shorter run.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from simulators.config import AuthorityConfig
from simulators.frames import HIGH, LOW, MEDIUM

_DAY = 86_400


@dataclass
class Authority:
    """Current level per district and when it last changed or last had a case."""

    districts: int
    config: AuthorityConfig
    level: np.ndarray = field(init=False)
    last_case: np.ndarray = field(init=False)
    changed_at: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.level = np.full(self.districts, LOW, dtype=np.int8)
        self.last_case = np.full(self.districts, np.iinfo(np.int64).min, dtype=np.int64)
        self.changed_at = np.zeros(self.districts, dtype=np.int64)

    def decide(self, moment: int, cases: list[tuple[int, int]]) -> list[tuple[int, int]]:
        """The (district, new level) designations taking effect at `moment`, given all
        diagnoses so far as (time, district)."""
        window_start = moment - self.config.window_days * _DAY
        recent = np.zeros(self.districts, dtype=np.int64)
        for when, district in cases:
            if when <= moment:
                self.last_case[district] = max(self.last_case[district], when)
                if when > window_start:
                    recent[district] += 1
        changes = []
        for district in range(self.districts):
            current = int(self.level[district])
            target = current
            # only cases since the last change raise a level, or a lowered district would bounce back
            fresh = self.last_case[district] > self.changed_at[district]
            if fresh and recent[district] >= self.config.high_cases:
                target = max(current, HIGH)
            elif fresh and recent[district] >= self.config.medium_cases:
                target = max(current, MEDIUM)
            quiet_since = max(int(self.last_case[district]), int(self.changed_at[district]))
            if target == current == HIGH and moment - quiet_since >= self.config.high_clear_days * _DAY:
                target = MEDIUM
            elif target == current == MEDIUM and moment - quiet_since >= self.config.medium_clear_days * _DAY:
                target = LOW
            if target != current:
                self.level[district] = target
                self.changed_at[district] = moment
                changes.append((district, target))
        return changes
