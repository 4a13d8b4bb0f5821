"""One comparison over several simulated cities: each metric's mean and a 90% interval, per rule set.

One simulated city is one draw: a rule set can look better on it by chance. `across_cities`
takes the comparisons of the same rule sets on several cities (other seeds, or other
event and truth files) and says, per metric and rule set,

- `mean`, `low`, `high`: the mean over the cities and its confidence interval
  (Student's t over the cities' values, 90% by default);
- `difference`, `difference_low`, `difference_high`: the same for the rule set's
  value minus the baseline's *in the same city* (paired), which is what "is the
  difference chance?" asks: an interval that excludes 0 says the sign is not chance.

With one city there is no spread to measure: the intervals are NaN. A city where a
metric is undefined (a share of nothing) does not count for that metric (`cities` says
how many did). Level shares and leak and cost per day get the same mean and interval
per bucket, aligned on the time since each city's period start.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.compare import Comparison

CONFIDENCE = 0.9
SUMMARY_COLUMNS = (
    "metric", "unit", "rule_set", "mean", "low", "high", "cities",
    "difference", "difference_low", "difference_high", "part", "whole", "counted", "definition",
)  # fmt: skip


def student_t_quantile(p: float, df: float) -> float:
    """The p-quantile of Student's t distribution with `df` degrees of freedom (|error| < 1e-9)."""
    if not 0.0 < p < 1.0:
        raise ValueError(f"a quantile needs 0 < p < 1, got {p}")
    if not df > 0:
        raise ValueError(f"degrees of freedom must be positive, got {df}")
    if p < 0.5:
        return -student_t_quantile(1.0 - p, df)
    tail = 1.0 - p
    if tail == 0.5:
        return 0.0
    # Bisection on the upper tail, which falls monotonically in t.
    low, high = 0.0, 1.0
    while _upper_tail(high, df) > tail:
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:
        middle = (low + high) / 2.0
        if _upper_tail(middle, df) > tail:
            low = middle
        else:
            high = middle
    return (low + high) / 2.0


def _upper_tail(t: float, df: float) -> float:
    """P(T > t) for t >= 0: half the regularized incomplete beta I_x(df/2, 1/2) at x = df / (df + t²)."""
    return 0.5 * _incomplete_beta(df / 2.0, 0.5, df / (df + t * t))


def _incomplete_beta(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b), by its continued fraction."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    front = math.exp(math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x))
    # The fraction converges fast only below the mean of the distribution; above, use the symmetry.
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _beta_fraction(a, b, x) / a
    return 1.0 - front * _beta_fraction(b, a, 1.0 - x) / b


def _beta_fraction(a: float, b: float, x: float) -> float:
    """Lentz's evaluation of the continued fraction of I_x(a, b) (Numerical Recipes, betacf)."""
    tiny = 1e-300
    c, d = 1.0, 1.0 - (a + b) * x / (a + 1.0)
    d = 1.0 / (d if abs(d) > tiny else tiny)
    result = d
    for m in range(1, 500):
        for numerator in (
            m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m)),
            -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1)),
        ):
            d = 1.0 + numerator * d
            d = 1.0 / (d if abs(d) > tiny else tiny)
            c = 1.0 + numerator / c
            c = c if abs(c) > tiny else tiny
            result *= c * d
        if abs(c * d - 1.0) < 1e-15:
            break
    return result


def mean_intervals(values: np.ndarray, confidence: float = CONFIDENCE) -> pd.DataFrame:
    """Per column of `values` (rows: cities): `mean`, `low`, `high` and `cities` (values that are not NaN).

    The interval is mean ± t(n-1) · sd / √n, Student's t at `confidence`; NaN below two values.
    """
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must lie between 0 and 1, got {confidence}")
    matrix = np.asarray(values, dtype=np.float64)
    if matrix.ndim != 2:
        raise ValueError("values must be a matrix: one row per city, one column per figure")
    counts = (~np.isnan(matrix)).sum(axis=0)
    totals = np.nansum(matrix, axis=0)
    means = np.divide(totals, counts, out=np.full(counts.shape, np.nan), where=counts > 0)
    squares = np.nansum((matrix - means) ** 2, axis=0)
    spread = np.sqrt(np.divide(squares, counts - 1, out=np.full(counts.shape, np.nan), where=counts > 1))
    quantiles = {int(n): student_t_quantile(0.5 + confidence / 2.0, n - 1) for n in set(counts.tolist()) if n > 1}
    factor = np.array([quantiles.get(int(n), np.nan) for n in counts])
    half = factor * spread / np.sqrt(np.maximum(counts, 1))
    return pd.DataFrame({"mean": means, "low": means - half, "high": means + half, "cities": counts})


@dataclass(frozen=True)
class Cities:
    """Comparisons of the same rule sets on several cities, summarised; rule sets in order, the first is the baseline."""

    names: tuple[str, ...]
    """One label per city (e.g. `seed 7`), in the order of `comparisons`."""
    comparisons: tuple[Comparison, ...]
    confidence: float
    per_city: pd.DataFrame
    """`city`, `metric`, `rule_set`, `value`: every figure of every city."""
    summary: pd.DataFrame
    """One row per metric and rule set, the columns of `SUMMARY_COLUMNS`; `part`, `whole` sum the cities' shares."""
    level_shares: pd.DataFrame
    """`rule_set`, `offset` (seconds since the period start), `level` (`yellow`, `red`), `mean`, `low`, `high`."""
    leak_and_cost: pd.DataFrame | None
    """With truth: `rule_set`, `offset`, `series` (`infectious_green_hours`, `restricted_days`), `mean`, `low`, `high`."""

    @property
    def rule_sets(self) -> tuple[str, ...]:
        return self.comparisons[0].rule_sets

    @property
    def baseline(self) -> str:
        return self.comparisons[0].baseline

    @property
    def common_start(self) -> int | None:
        """The period start all cities share, or None when they differ (charts then count time from each start)."""
        starts = {comparison.period.start for comparison in self.comparisons}
        return starts.pop() if len(starts) == 1 else None


def across_cities(
    comparisons: Sequence[Comparison], names: Sequence[str], confidence: float = CONFIDENCE
) -> Cities:
    """Summarise the same rule sets' comparisons on several cities (see the module docstring)."""
    if not comparisons:
        raise ValueError("across_cities needs at least one city's comparison")
    if len(names) != len(comparisons):
        raise ValueError(f"{len(names)} city names for {len(comparisons)} comparisons")
    if len(set(names)) != len(names):
        raise ValueError("every city needs its own name")
    first = comparisons[0]
    for name, comparison in zip(names, comparisons):
        if comparison.rule_sets != first.rule_sets or comparison.metrics.index.tolist() != first.metrics.index.tolist():
            raise ValueError(f"city {name} compares other rule sets or metrics than city {names[0]}")
    per_city = pd.concat(
        [
            comparison.metrics[list(first.rule_sets)]
            .rename_axis("metric")
            .reset_index()
            .melt(id_vars="metric", var_name="rule_set", value_name="value")
            .assign(city=name)
            for name, comparison in zip(names, comparisons)
        ],
        ignore_index=True,
    )[["city", "metric", "rule_set", "value"]]
    leak = None
    if all(comparison.leak_and_cost is not None for comparison in comparisons):
        leak = _series(
            [c.leak_and_cost for c in comparisons], comparisons, ("infectious_green_hours", "restricted_days"), "series", confidence
        )
    return Cities(
        names=tuple(names),
        comparisons=tuple(comparisons),
        confidence=confidence,
        per_city=per_city,
        summary=_summary(comparisons, per_city, confidence),
        level_shares=_series([c.level_shares for c in comparisons], comparisons, ("yellow", "red"), "level", confidence),
        leak_and_cost=leak,
    )


def _summary(comparisons: Sequence[Comparison], per_city: pd.DataFrame, confidence: float) -> pd.DataFrame:
    first = comparisons[0]
    values = per_city.pivot_table(index="city", columns=["metric", "rule_set"], values="value", aggfunc="first", dropna=False)
    values = values.reindex(per_city["city"].unique())
    shares = pd.concat([c.shares for c in comparisons], ignore_index=True)
    shares = shares.groupby(["metric", "rule_set"], sort=False).agg(part=("part", "sum"), whole=("whole", "sum"), counted=("counted", "first"))
    rows = []
    for metric, about in first.metrics.iterrows():
        baseline = values[(metric, first.baseline)].to_numpy()
        for name in first.rule_sets:
            own = values[(metric, name)].to_numpy()
            stats = mean_intervals(np.column_stack([own, own - baseline]), confidence)
            level, change = stats.iloc[0], stats.iloc[1]
            share = shares.loc[(metric, name)] if (metric, name) in shares.index else None
            rows.append(
                (
                    metric, about["unit"], name, level["mean"], level["low"], level["high"], int(level["cities"]),
                    *((np.nan,) * 3 if name == first.baseline else (change["mean"], change["low"], change["high"])),
                    *((np.nan, np.nan, None) if share is None else (share["part"], share["whole"], share["counted"])),
                    about["definition"],
                )
            )  # fmt: skip
    return pd.DataFrame(rows, columns=list(SUMMARY_COLUMNS))


def _series(
    frames: Sequence[pd.DataFrame], comparisons: Sequence[Comparison], columns: Sequence[str], key: str, confidence: float
) -> pd.DataFrame:
    """Mean and interval per rule set, bucket (as the offset from each period's start) and column."""
    long = pd.concat(
        [
            frame.assign(offset=frame["start"] - comparison.period.start, city=index)
            .melt(id_vars=["rule_set", "offset", "city"], value_vars=list(columns), var_name=key)
            for index, (frame, comparison) in enumerate(zip(frames, comparisons))
        ],
        ignore_index=True,
    )
    wide = long.pivot_table(index="city", columns=["rule_set", "offset", key], values="value", aggfunc="first", dropna=False)
    stats = mean_intervals(wide.to_numpy(), confidence)
    stats.index = wide.columns
    table = stats.drop(columns="cities").reset_index()
    order = {name: rank for rank, name in enumerate(comparisons[0].rule_sets)}
    table = table.assign(rank=table["rule_set"].map(order), part=table[key].map({c: i for i, c in enumerate(columns)}))
    table = table.sort_values(["rank", "part", "offset"], kind="stable").drop(columns=["rank", "part"])
    return table[["rule_set", "offset", key, "mean", "low", "high"]].reset_index(drop=True)
