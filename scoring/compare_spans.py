"""Level timelines as spans of time, and person-time summed over buckets.

A *timeline* is what a replay produces: one row per change of a person's level or of the
set of rules giving it (a reason starting or lapsing at the same level), ordered by time
then person, with the columns

- `person` (str), `at` (int epoch seconds), `level` (`green`, `yellow`, `red`),
- `reasons`: the ids of the rules active from that change on (a tuple of str).

A person's level before their first change is green. A *span* is the stretch of time
between two changes of one person, cut to the observation period: every metric of a
comparison is a sum or a minimum over spans, so they are computed once here (a change of
reasons alone splits a span in two at the same level: the sums stay, and each part names
the rules active in it).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.timeutil import parse_rfc3339

GREEN = "green"
RESTRICTED = ("yellow", "red")
NO_REASON = "none"
"""The reason key of a span with no active rule (a green person)."""

TIMELINE_COLUMNS = ("person", "at", "level", "reasons")
SPAN_COLUMNS = ("person", "start", "end", "level", "reasons")


@dataclass(frozen=True, slots=True)
class Period:
    """The observation period [start, end) in epoch seconds: metrics count time inside it only."""

    start: int
    end: int

    def __post_init__(self) -> None:
        if self.end <= self.start:
            raise ValueError(f"an observation period must end after it starts ({self.start} >= {self.end})")

    @property
    def seconds(self) -> int:
        return self.end - self.start


def timeline_frame(changes: Iterable[Mapping]) -> pd.DataFrame:
    """A timeline DataFrame from timeline lines as JSON objects (as `healthcode replay` writes them).

    Each object has `person`, `at` (RFC 3339), `level`, `reasons` ([{"rule": ...}, ...])
    and optionally `rule_set`; `at` becomes epoch seconds, `reasons` a tuple of rule ids.
    """
    rows = [
        {
            "person": change["person"],
            "at": parse_rfc3339(change["at"]),
            "level": change["level"],
            "reasons": tuple(reason["rule"] for reason in change.get("reasons", ())),
        }
        for change in changes
    ]
    frame = pd.DataFrame(rows, columns=list(TIMELINE_COLUMNS))
    return frame.astype({"person": object, "at": "int64", "level": object})


def reason_key(reasons: Iterable[str]) -> str:
    """One label for a set of active rules: sorted rule ids joined by `+`, or `none`."""
    ids = sorted(set(reasons))
    return "+".join(ids) if ids else NO_REASON


def level_spans(timeline: pd.DataFrame, period: Period) -> pd.DataFrame:
    """Spans (person, start, end, level, reasons) covering the period for every person in the timeline.

    The level at `period.start` is the last change at or before it (green when none);
    changes at or after `period.end` are ignored; of several changes of one person at
    the same second the last one holds. `reasons` is the `reason_key` of the rules.
    Persons absent from the timeline are green throughout and get no span.
    """
    if timeline.empty:
        return pd.DataFrame({name: pd.Series(dtype=dtype) for name, dtype in _SPAN_DTYPES.items()})
    changes = timeline.loc[:, list(TIMELINE_COLUMNS)].copy()
    changes["reasons"] = [reason_key(reasons) for reasons in changes["reasons"]]
    changes = changes.sort_values(["person", "at"], kind="stable")
    changes = changes[changes["at"] < period.end]
    earlier = changes[changes["at"] <= period.start].drop_duplicates("person", keep="last")
    opening = pd.DataFrame({"person": changes["person"].unique(), "at": period.start, "level": GREEN, "reasons": NO_REASON})
    opening = opening.set_index("person")
    opening.update(earlier.set_index("person")[["level", "reasons"]])
    later = changes[changes["at"] > period.start]
    spans = pd.concat([opening.reset_index(), later], ignore_index=True)
    spans = spans.sort_values(["person", "at"], kind="stable").drop_duplicates(["person", "at"], keep="last")
    following = spans.groupby("person", sort=False)["at"].shift(-1)
    spans = spans.assign(end=following.fillna(period.end).astype("int64")).rename(columns={"at": "start"})
    return spans.loc[:, list(SPAN_COLUMNS)].astype(_SPAN_DTYPES).reset_index(drop=True)


_SPAN_DTYPES = {"person": object, "start": "int64", "end": "int64", "level": object, "reasons": object}


def restricted(spans: pd.DataFrame) -> pd.DataFrame:
    """The spans in which the person was not green (yellow or red)."""
    return spans[spans["level"] != GREEN]


def person_time(starts: np.ndarray, ends: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Seconds of the intervals [starts, ends) that fall into each bucket [edges[i], edges[i+1]).

    Exact: the covered time up to t, F(t) = sum(clip(t - start, 0, end - start)), is
    evaluated at the bucket edges from sorted starts and ends, and differenced.
    """
    # Measured from the first edge so the running sums stay far inside float64's exact range.
    origin = edges[0] if len(edges) else 0
    edges = np.asarray(edges, dtype=np.float64) - origin
    starts = np.asarray(starts, dtype=np.float64) - origin
    ends = np.asarray(ends, dtype=np.float64) - origin
    return np.diff(_covered_until(starts, edges) - _covered_until(ends, edges))


def _covered_until(points: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """sum(max(0, t - p)) over points p, at every edge t."""
    ordered = np.sort(points)
    before = np.searchsorted(ordered, edges, side="right")
    prefix = np.concatenate(([0.0], np.cumsum(ordered)))
    return before * edges - prefix[before]


def bucket_edges(period: Period, step: int) -> np.ndarray:
    """Bucket edges from the period's start every `step` seconds; the last bucket ends at `period.end`."""
    if step <= 0:
        raise ValueError(f"bucket step must be positive, got {step}")
    return np.append(np.arange(period.start, period.end, step, dtype=np.int64), period.end)
