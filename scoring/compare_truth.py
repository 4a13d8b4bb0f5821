"""Backtest metrics of one rule set's level timeline against the ground truth of who was infected.

Everything is measured inside the observation period [start, end) only. The truth is
one row per resident (`truth_frame`); persons of the timeline that the truth does not
list are left out, and every resident the timeline does not mention was green.

`person_outcomes` reduces a rule set's spans and the truth to one row per resident;
each metric in `TRUTH_METRICS` is then a one-line formula over those rows, defined
once below with a docstring that says exactly what is counted.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from scoring.compare_spans import Period, bucket_edges, person_time, restricted

HOUR = 3600
DAY = 86400
TRUTH_TIMES = ("infected_at", "infectious_from", "infectious_until")
_EPOCH = pd.Timestamp(0, tz="UTC")


def truth_frame(truth: pd.DataFrame) -> pd.DataFrame:
    """`person` and the times `infected_at`, `infectious_from`, `infectious_until` as float epoch seconds.

    Accepts the simulator's truth (UTC timestamps, null where it did not happen) or
    numbers of epoch seconds (NaN where it did not happen); a person listed twice or a
    timestamp without a time zone is an error.
    """
    missing = [column for column in ("person", *TRUTH_TIMES) if column not in truth.columns]
    if missing:
        raise ValueError(f"the truth lacks column(s) {', '.join(missing)}")
    if truth["person"].duplicated().any():
        raise ValueError(f"the truth lists person {truth['person'][truth['person'].duplicated()].iloc[0]!r} twice")
    frame = pd.DataFrame({"person": truth["person"].astype(object).to_numpy()})
    for column in TRUTH_TIMES:
        frame[column] = _seconds(truth[column], column).to_numpy()
    return frame


def _seconds(values: pd.Series, column: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return (values - _EPOCH) / pd.Timedelta(seconds=1)
    if pd.api.types.is_datetime64_any_dtype(values):
        raise ValueError(f"truth column {column} has no time zone: give UTC timestamps or epoch seconds")
    return values.astype("float64")


def person_outcomes(spans: pd.DataFrame, truth: pd.DataFrame, period: Period) -> pd.DataFrame:
    """One row per resident of the truth (index `person`) with what the rule set did to them.

    Columns, all inside the period:
    - `infected`: the truth has an infection time for them (at any time, even before the period);
    - `infected_in_period`: they were infected at or after `period.start` and before its end;
    - `infectious_s`: seconds of their infectious window [infectious_from, infectious_until);
    - `infectious_flagged_s`: of those, seconds they were yellow or red;
    - `latent_s`: seconds from infection to the start of their infectious window;
    - `latent_flagged_s`: of those, seconds they were yellow or red;
    - `first_flag_delay_s`: for `infected_in_period` only, seconds from infection to the
      first moment at or after it when they were yellow or red (NaN if never, in the period);
    - `yellow_s`, `red_s`: seconds they spent yellow, red.
    """
    people = truth.set_index("person")
    start, end = period.start, period.end
    infected_at = people["infected_at"]
    outcomes = pd.DataFrame(index=people.index)
    outcomes["infected"] = infected_at.notna()
    outcomes["infected_in_period"] = (infected_at >= start) & (infected_at < end)
    windows = {
        "infectious": (people["infectious_from"], people["infectious_until"]),
        "latent": (infected_at, people["infectious_from"]),
    }
    flags = restricted(spans)
    flags = flags[flags["person"].isin(people.index)]
    for name, (opens, closes) in windows.items():
        opens, closes = opens.clip(start, end), closes.clip(start, end)
        outcomes[f"{name}_s"] = (closes - opens).clip(lower=0).fillna(0.0)
        outcomes[f"{name}_flagged_s"] = _overlap(flags, opens, closes).reindex(people.index, fill_value=0.0)
    outcomes["first_flag_delay_s"] = _first_flag_delay(flags, infected_at[outcomes["infected_in_period"]])
    durations = flags.assign(seconds=flags["end"] - flags["start"]).pivot_table(
        index="person", columns="level", values="seconds", aggfunc="sum"
    )
    for level in ("yellow", "red"):
        seconds = durations[level] if level in durations.columns else pd.Series(dtype="float64")
        outcomes[f"{level}_s"] = seconds.reindex(people.index).fillna(0.0).astype("float64")
    return outcomes


def _overlap(flags: pd.DataFrame, opens: pd.Series, closes: pd.Series) -> pd.Series:
    """Seconds per person of restricted spans inside that person's [open, close)."""
    windows = pd.DataFrame({"open": opens, "close": closes}).dropna()
    joined = flags.join(windows, on="person", how="inner")
    seconds = (np.minimum(joined["end"], joined["close"]) - np.maximum(joined["start"], joined["open"])).clip(lower=0)
    return seconds.groupby(joined["person"]).sum().astype("float64")


def _first_flag_delay(flags: pd.DataFrame, infected_at: pd.Series) -> pd.Series:
    joined = flags.join(infected_at.rename("infected_at"), on="person", how="inner")
    joined = joined[joined["end"] > joined["infected_at"]]
    first = np.maximum(joined["start"], joined["infected_at"]).groupby(joined["person"]).min()
    return (first - infected_at).reindex(infected_at.index)


@dataclass(frozen=True, slots=True)
class Ratio:
    """A share that keeps what it is a share of: `part` of `whole`, both counted in `counted`.

    A reader trusts "100.0%" only beside "5 of 5"; the report prints both.
    """

    part: float
    whole: float
    counted: str

    @property
    def value(self) -> float:
        """part / whole, NaN when there is nothing to take a share of."""
        return self.part / self.whole if self.whole else float("nan")


@dataclass(frozen=True, slots=True)
class Metric:
    """A named figure computed from `person_outcomes`; `unit` says how to read it (a `share` is a `Ratio`)."""

    label: str
    unit: str
    compute: Callable[..., float | Ratio]

    @property
    def definition(self) -> str:
        """The metric's definition: the docstring of its function."""
        return " ".join((self.compute.__doc__ or "").split())


def _share(numerator: float, denominator: float, counted: str) -> Ratio:
    return Ratio(float(numerator), float(denominator), counted)


def infectious_persons(o: pd.DataFrame) -> float:
    """Residents whose infectious window overlaps the period (the denominator of the next share)."""
    return float((o["infectious_s"] > 0).sum())


def flagged_while_infectious(o: pd.DataFrame) -> Ratio:
    """Share of infectious residents who were yellow or red at some moment of their infectious window."""
    infectious = o[o["infectious_s"] > 0]
    return _share((infectious["infectious_flagged_s"] > 0).sum(), len(infectious), "persons")


def flagged_before_infectious(o: pd.DataFrame) -> Ratio:
    """Share of residents with a latent stretch (infection to the start of infectiousness) in the period
    who were yellow or red at some moment of it: restricted before they could infect anyone."""
    latent = o[o["latent_s"] > 0]
    return _share((latent["latent_flagged_s"] > 0).sum(), len(latent), "persons")


def infectious_hours_green(o: pd.DataFrame) -> float:
    """Person-hours in which an infectious resident was green: the leak that matters most."""
    return float((o["infectious_s"] - o["infectious_flagged_s"]).sum()) / HOUR


def infectious_hours_green_share(o: pd.DataFrame) -> Ratio:
    """Share of all infectious person-hours that were spent green."""
    green = (o["infectious_s"] - o["infectious_flagged_s"]).sum()
    return _share(green / HOUR, o["infectious_s"].sum() / HOUR, "person-hours")


def first_flag_delay_median(o: pd.DataFrame) -> float:
    """Median hours from infection to the first yellow or red moment at or after it, over residents
    infected in the period and flagged before it ended (0 when already flagged when infected)."""
    delays = o["first_flag_delay_s"].dropna()
    return float(np.median(delays)) / HOUR if len(delays) else float("nan")


def first_flag_delay_p90(o: pd.DataFrame) -> float:
    """90th percentile (linear interpolation) of the same hours from infection to first yellow or red."""
    delays = o["first_flag_delay_s"].dropna()
    return float(np.percentile(delays, 90)) / HOUR if len(delays) else float("nan")


def yellow_days_never_infected(o: pd.DataFrame) -> float:
    """Person-days spent yellow by residents the truth never infected."""
    return float(o.loc[~o["infected"], "yellow_s"].sum()) / DAY


def red_days_never_infected(o: pd.DataFrame) -> float:
    """Person-days spent red by residents the truth never infected."""
    return float(o.loc[~o["infected"], "red_s"].sum()) / DAY


def restricted_days_per_infection(o: pd.DataFrame) -> float:
    """All yellow and red person-days (every resident) divided by the number of infected residents."""
    infected = o["infected"].sum()
    return float((o["yellow_s"] + o["red_s"]).sum() / DAY / infected) if infected else float("nan")


def precision(o: pd.DataFrame) -> Ratio:
    """Share of all yellow and red person-days that fell on residents the truth infected (at any time)."""
    days = (o["yellow_s"] + o["red_s"]) / DAY
    return _share(days[o["infected"]].sum(), days.sum(), "person-days")


TRUTH_METRICS: tuple[Metric, ...] = (
    Metric("infectious residents", "persons", infectious_persons),
    Metric("flagged while infectious", "share", flagged_while_infectious),
    Metric("flagged before infectious", "share", flagged_before_infectious),
    Metric("infectious hours green", "person-hours", infectious_hours_green),
    Metric("infectious hours green (share)", "share", infectious_hours_green_share),
    Metric("infection to flag, median", "hours", first_flag_delay_median),
    Metric("infection to flag, p90", "hours", first_flag_delay_p90),
    Metric("yellow days, never infected", "person-days", yellow_days_never_infected),
    Metric("red days, never infected", "person-days", red_days_never_infected),
    Metric("restricted days per infection", "person-days", restricted_days_per_infection),
    Metric("precision", "share", precision),
)


def leak_and_cost(spans: pd.DataFrame, truth: pd.DataFrame, period: Period, step: int = DAY) -> pd.DataFrame:
    """Per bucket of `step` seconds: the leak and the cost of one rule set over time.

    Columns: `start` (bucket start, epoch seconds), `infectious_green_hours` (person-hours
    infectious residents spent green in the bucket) and `restricted_days` (yellow or red
    person-days in the bucket, residents of the truth only).
    """
    edges = bucket_edges(period, step)
    people = truth.set_index("person")
    infectious = people[["infectious_from", "infectious_until"]].dropna()
    flags = restricted(spans)
    flags = flags[flags["person"].isin(people.index)]
    both = flags.join(infectious, on="person", how="inner")
    both_start = np.maximum(both["start"], both["infectious_from"]).to_numpy()
    both_end = np.minimum(both["end"], both["infectious_until"]).to_numpy()
    keep = both_end > both_start
    infectious_time = person_time(infectious["infectious_from"].to_numpy(), infectious["infectious_until"].to_numpy(), edges)
    caught_time = person_time(both_start[keep], both_end[keep], edges)
    restricted_time = person_time(flags["start"].to_numpy(), flags["end"].to_numpy(), edges)
    return pd.DataFrame(
        {
            "start": edges[:-1],
            "infectious_green_hours": (infectious_time - caught_time) / HOUR,
            "restricted_days": restricted_time / DAY,
        }
    )
