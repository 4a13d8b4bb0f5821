"""Compare rule sets on the same events: the backtest an epidemiologist runs before publishing one.

`compare` takes each rule set's level timeline (what a replay of the same events gave,
see `scoring.compare_spans` for the columns) and, when there is one, the ground truth of
who was infected when, and returns pandas DataFrames for a notebook, a table or a report:

    from scoring.compare import Period, compare, timeline_frame
    from scoring.replay import replay_file
    timelines = {rules.ref: timeline_frame(c.to_dict() for c in replay_file(events, rules).timeline)
                 for rules in (default, points)}
    result = compare(timelines, Period(start, end), truth=pd.read_parquet("sim/truth.parquet"))
    result.metrics           # one row per metric, one column per rule set

Every figure is defined once, in `scoring.compare_truth` (needs the truth) and
`scoring.compare_levels` (does not); `Comparison.metrics` carries each definition.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd

from scoring.compare_levels import (
    disagreements,
    example_persons,
    example_timelines,
    level_shares,
    persons_differing,
    persons_restricted,
    red_days,
    yellow_days,
)
from scoring.compare_spans import Period, level_spans, timeline_frame
from scoring.compare_truth import DAY, HOUR, TRUTH_METRICS, Metric, Ratio, leak_and_cost, person_outcomes, truth_frame

__all__ = ["Comparison", "LEVEL_METRICS", "Period", "compare", "timeline_frame", "truth_frame"]

LEVEL_METRICS: tuple[Metric, ...] = (
    Metric("persons ever restricted", "persons", persons_restricted),
    Metric("yellow days", "person-days", yellow_days),
    Metric("red days", "person-days", red_days),
)
"""Figures from the level timeline alone, computed from a rule set's spans."""

DIFFERING = Metric("persons differing from baseline", "persons", persons_differing)


@dataclass(frozen=True)
class Comparison:
    """Everything a comparison found, as DataFrames; rule sets in the order given, the first is the baseline."""

    period: Period
    population: int
    rule_sets: tuple[str, ...]
    metrics: pd.DataFrame
    """Index: metric label. Columns: `unit`, one per rule set, `definition`."""
    shares: pd.DataFrame
    """What each share is of: `metric`, `rule_set`, `part`, `whole`, `counted` (the unit of both)."""
    level_shares: pd.DataFrame
    """`rule_set`, `start` and the share of the population `green`, `yellow`, `red` per bucket."""
    disagreements: pd.DataFrame
    """Persons and person-hours whose level differs from the baseline's, by the reasons on each side."""
    examples: pd.DataFrame
    """Spans of a few persons the rule sets disagree on longest, under every rule set."""
    leak_and_cost: pd.DataFrame | None
    """With truth: `rule_set`, `start`, `infectious_green_hours`, `restricted_days` per day."""

    @property
    def baseline(self) -> str:
        return self.rule_sets[0]


def compare(
    timelines: Mapping[str, pd.DataFrame],
    period: Period,
    truth: pd.DataFrame | None = None,
    population: int | None = None,
    share_step: int = HOUR,
    examples: int = 5,
) -> Comparison:
    """Compare the level timelines of rule sets (`{rule set ref: timeline}`, the first is the baseline).

    `truth` (one row per resident, see `scoring.compare_truth.truth_frame`) adds the
    backtest metrics and the leak and cost per day. `population` is the number of persons
    the levels are shares of; it defaults to the residents in the truth, else to the
    persons the timelines mention (a lower bound: persons never changed are unseen).
    """
    if not timelines:
        raise ValueError("compare needs at least one rule set's timeline")
    names = tuple(timelines)
    spans = {name: level_spans(timeline, period) for name, timeline in timelines.items()}
    people = truth_frame(truth) if truth is not None else None
    if population is None:
        population = len(people) if people is not None else _persons_seen(spans)
    baseline = names[0]
    metrics = [*LEVEL_METRICS, DIFFERING]
    results: dict[str, list[float | Ratio]] = {
        name: [metric.compute(frame) for metric in LEVEL_METRICS] + [DIFFERING.compute(spans[baseline], frame, period)]
        for name, frame in spans.items()
    }
    leak = None
    if people is not None:
        metrics += TRUTH_METRICS
        for name, frame in spans.items():
            outcomes = person_outcomes(frame, people, period)
            results[name] += [metric.compute(outcomes) for metric in TRUTH_METRICS]
        leak = _stacked({name: leak_and_cost(frame, people, period, DAY) for name, frame in spans.items()})
    columns = {name: [r.value if isinstance(r, Ratio) else r for r in row] for name, row in results.items()}
    chosen = example_persons(spans, period, baseline, examples)
    return Comparison(
        period=period,
        population=population,
        rule_sets=names,
        metrics=_metric_table(metrics, columns),
        shares=_share_table(metrics, results),
        level_shares=_stacked({name: level_shares(frame, population, period, share_step) for name, frame in spans.items()}),
        disagreements=disagreements(spans, period, baseline),
        examples=example_timelines(spans, chosen, period),
        leak_and_cost=leak,
    )


def _persons_seen(spans: Mapping[str, pd.DataFrame]) -> int:
    seen = set()
    for frame in spans.values():
        seen.update(frame["person"])
    return max(len(seen), 1)


def _metric_table(metrics: list[Metric], columns: dict[str, list[float]]) -> pd.DataFrame:
    table = pd.DataFrame(
        {
            "metric": [metric.label for metric in metrics],
            "unit": [metric.unit for metric in metrics],
            **columns,
            "definition": [metric.definition for metric in metrics],
        }
    )
    return table.set_index("metric")


def _share_table(metrics: list[Metric], results: Mapping[str, list[float | Ratio]]) -> pd.DataFrame:
    rows = [
        (metric.label, name, result.part, result.whole, result.counted)
        for name, row in results.items()
        for metric, result in zip(metrics, row)
        if isinstance(result, Ratio)
    ]
    return pd.DataFrame(rows, columns=["metric", "rule_set", "part", "whole", "counted"])


def _stacked(frames: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """One long frame from per-rule-set frames, `rule_set` first."""
    table = pd.concat([frame.assign(rule_set=name) for name, frame in frames.items()], ignore_index=True)
    return table[["rule_set", *[column for column in table.columns if column != "rule_set"]]]
