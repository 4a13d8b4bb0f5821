"""Comparisons that need no ground truth: level shares over time and where rule sets disagree.

They work on recorded events as well as simulated ones: given the spans of every rule
set (see `scoring.compare_spans`), they say how much of the population each rule set
holds at each level, and which persons two rule sets would treat differently, grouped
by the reasons (active rules) behind each side of the difference.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from scoring.compare_spans import GREEN, NO_REASON, RESTRICTED, Period, bucket_edges, person_time, restricted
from scoring.compare_truth import DAY, HOUR

DISAGREEMENT_COLUMNS = ("rule_set", "baseline_level", "baseline_reasons", "level", "reasons", "persons", "person_hours")


def level_shares(spans: pd.DataFrame, population: int, period: Period, step: int = HOUR) -> pd.DataFrame:
    """Per bucket of `step` seconds, the time-weighted share of the population at each level.

    Columns `start` (bucket start, epoch seconds), `green`, `yellow`, `red`: the person-time
    spent at that level in the bucket divided by `population` times the bucket's length, so
    each row sums to 1. Persons without spans are green; `population` counts them too.
    """
    if population <= 0:
        raise ValueError(f"population must be positive, got {population}")
    edges = bucket_edges(period, step)
    capacity = population * np.diff(edges).astype(np.float64)
    shares = {"start": edges[:-1]}
    for level in RESTRICTED:
        at_level = spans[spans["level"] == level]
        shares[level] = person_time(at_level["start"].to_numpy(), at_level["end"].to_numpy(), edges) / capacity
    frame = pd.DataFrame(shares)
    frame.insert(1, GREEN, 1.0 - frame["yellow"] - frame["red"])
    return frame


def persons_restricted(spans: pd.DataFrame) -> float:
    """Persons who were yellow or red at some moment of the period."""
    return float(restricted(spans)["person"].nunique())


def yellow_days(spans: pd.DataFrame) -> float:
    """Person-days spent yellow in the period, by everyone."""
    return _days(spans, "yellow")


def red_days(spans: pd.DataFrame) -> float:
    """Person-days spent red in the period, by everyone."""
    return _days(spans, "red")


def _days(spans: pd.DataFrame, level: str) -> float:
    at_level = spans[spans["level"] == level]
    return float((at_level["end"] - at_level["start"]).sum()) / DAY


def aligned_levels(baseline: pd.DataFrame, candidate: pd.DataFrame, period: Period) -> pd.DataFrame:
    """The two rule sets' spans cut at every change of either, person by person.

    Columns `person`, `start`, `end`, `baseline_level`, `baseline_reasons`, `level`,
    `reasons`: within each row both rule sets hold one level. Persons in neither spans
    frame (green under both) are left out.
    """
    starts = pd.concat([baseline[["person", "start"]], candidate[["person", "start"]]]).drop_duplicates()
    grid = starts.sort_values(["start", "person"], kind="stable").reset_index(drop=True)
    for prefix, spans in (("baseline_", baseline), ("", candidate)):
        side = spans[["person", "start", "level", "reasons"]].sort_values("start", kind="stable")
        side = side.rename(columns={"level": f"{prefix}level", "reasons": f"{prefix}reasons"})
        grid = pd.merge_asof(grid, side, on="start", by="person", direction="backward")
        # A person with spans on one side only is green there all along.
        grid[f"{prefix}level"] = grid[f"{prefix}level"].fillna(GREEN)
        grid[f"{prefix}reasons"] = grid[f"{prefix}reasons"].fillna(NO_REASON)
    grid = grid.sort_values(["person", "start"], kind="stable")
    following = grid.groupby("person", sort=False)["start"].shift(-1)
    grid["end"] = following.fillna(period.end).astype("int64")
    return grid[["person", "start", "end", "baseline_level", "baseline_reasons", "level", "reasons"]].reset_index(drop=True)


def disagreements(spans: Mapping[str, pd.DataFrame], period: Period, baseline: str) -> pd.DataFrame:
    """Persons whose level differs from the baseline rule set's, grouped by the reasons on each side.

    One row per (rule set, baseline level, baseline reasons, level, reasons) where the
    levels differ: `persons` is how many persons were ever in that situation and
    `person_hours` how long in total. A person can count in several rows. Sorted by
    rule set, then most person-hours first.
    """
    frames = []
    for name, candidate in spans.items():
        if name == baseline:
            continue
        pieces = _differing(spans[baseline], candidate, period)
        grouped = pieces.groupby(list(DISAGREEMENT_COLUMNS[1:5]), sort=False).agg(
            persons=("person", "nunique"), person_hours=("hours", "sum")
        )
        frames.append(grouped.reset_index().assign(rule_set=name))
    if not frames:
        return pd.DataFrame(columns=list(DISAGREEMENT_COLUMNS))
    table = pd.concat(frames, ignore_index=True).loc[:, list(DISAGREEMENT_COLUMNS)]
    order = {name: rank for rank, name in enumerate(spans)}
    table = table.assign(rank=table["rule_set"].map(order)).sort_values(
        ["rank", "person_hours", "persons", "baseline_reasons", "reasons"], ascending=[True, False, False, True, True]
    )
    return table.drop(columns="rank").reset_index(drop=True)


def _differing(baseline: pd.DataFrame, candidate: pd.DataFrame, period: Period) -> pd.DataFrame:
    pieces = aligned_levels(baseline, candidate, period)
    pieces = pieces[pieces["baseline_level"] != pieces["level"]]
    return pieces.assign(hours=(pieces["end"] - pieces["start"]) / HOUR)


def persons_differing(baseline: pd.DataFrame, candidate: pd.DataFrame, period: Period) -> float:
    """Persons whose level under the candidate differs from the baseline's at some moment of the period."""
    return float(_differing(baseline, candidate, period)["person"].nunique())


def example_persons(spans: Mapping[str, pd.DataFrame], period: Period, baseline: str, count: int = 5) -> list[str]:
    """The `count` persons the rule sets disagree on longest (summed over all rule sets), ties by person."""
    hours = [
        _differing(spans[baseline], candidate, period).groupby("person")["hours"].sum()
        for name, candidate in spans.items()
        if name != baseline
    ]
    if not hours:
        return []
    total = pd.concat(hours).groupby(level=0).sum()
    ranked = total.reset_index().sort_values(["hours", "person"], ascending=[False, True])
    return ranked["person"].head(count).tolist()


def example_timelines(spans: Mapping[str, pd.DataFrame], persons: list[str], period: Period) -> pd.DataFrame:
    """The spans of the given persons under every rule set: `person`, `rule_set`, `start`, `end`, `level`, `reasons`.

    Ordered as `persons`, then as the rule sets, then by time. A person a rule set left
    green all along gets one green span over the whole period under it.
    """
    rows = []
    for name, frame in spans.items():
        chosen = frame[frame["person"].isin(persons)]
        unchanged = [person for person in persons if person not in set(chosen["person"])]
        always_green = pd.DataFrame(
            {"person": unchanged, "start": period.start, "end": period.end, "level": GREEN, "reasons": NO_REASON}
        )
        rows.append(pd.concat([chosen, always_green], ignore_index=True).assign(rule_set=name))
    columns = ["person", "rule_set", "start", "end", "level", "reasons"]
    if not rows:
        return pd.DataFrame(columns=columns)
    table = pd.concat(rows, ignore_index=True)
    person_rank = {person: rank for rank, person in enumerate(persons)}
    set_rank = {name: rank for rank, name in enumerate(spans)}
    table = table.assign(p=table["person"].map(person_rank), r=table["rule_set"].map(set_rank))
    table = table.sort_values(["p", "r", "start"], kind="stable")
    return table.loc[:, columns].astype({"start": "int64", "end": "int64"}).reset_index(drop=True)
