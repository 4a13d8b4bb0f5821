"""The comparison report: one self-contained HTML file an epidemiologist can open anywhere.

Charts are drawn with matplotlib (object API, no pyplot state) and embedded as base64
PNG; the style sheet is inline; nothing is fetched from the network when it is opened.
`render_report` only turns a `Cities` summary (one city or several) into text: writing
the file is the caller's. The report says where it came from (rule set hashes, tool,
cities, generation time), what each share is a share of, the rule sets' differences in
the domain's words, and, over several cities, each figure's interval. Times are UTC.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Iterator, Mapping, Sequence
from html import escape

import numpy as np
import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from scoring.compare import Comparison
from scoring.compare_cities import Cities
from scoring.compare_truth import DAY
from scoring.timeutil import format_rfc3339

LEVEL_COLOURS = {"green": "#2e7d32", "yellow": "#f2b705", "red": "#c62828"}
RULE_SET_COLOURS = ("#1565c0", "#e65100", "#6a1b9a", "#00838f", "#ad1457", "#558b2f", "#4e342e", "#37474f")
"""One colour per rule set, the same in every chart (the baseline first)."""
DISAGREEMENT_ROWS = 12
"""Reason pairs listed per rule set; the rest are summed into one line."""
TIME_LABEL = "time (UTC)"


def format_value(value: float, unit: str) -> str:
    """A metric as a reader wants it: shares in percent, counts whole, the rest to one decimal."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "share":
        return f"{100 * value:.1f}%"
    if unit == "persons":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def format_interval(mean: float, low: float, high: float, unit: str, signed: bool = False) -> str:
    """`mean [low, high]`, or the mean alone when there is no interval; `signed` for differences (shares in points)."""
    text = _signed if signed else format_value
    if math.isnan(low) or math.isnan(high):
        return text(mean, unit)
    return f"{text(mean, unit)} [{text(low, unit)}, {text(high, unit)}]"


def _signed(value: float, unit: str) -> str:
    if math.isnan(value):
        return "n/a"
    if unit == "share":
        return f"{100 * value:+.1f} pt"
    if unit == "persons":
        return f"{value:+,.0f}"
    return f"{value:+,.1f}"


def format_share_of(part: float, whole: float, counted: str) -> str:
    """What a share is of: `(5 of 5)` for persons, `(65.0 of 105.0 person-hours)` for time."""
    if counted == "persons":
        return f"({part:,.0f} of {whole:,.0f})"
    return f"({part:,.1f} of {whole:,.1f} {counted})"


def metrics_title(cities: Cities) -> str:
    if len(cities.names) == 1:
        return f"rule set comparison (baseline {cities.baseline})"
    percent = round(cities.confidence * 100)
    return f"rule set comparison over {len(cities.names)} cities: mean [{percent}% interval] (baseline {cities.baseline})"


def metric_columns(cities: Cities) -> list[str]:
    """The value columns of the metrics table: one per rule set, then (several cities) one per difference."""
    columns = list(cities.rule_sets)
    if len(cities.names) > 1:
        columns += [f"{name} - baseline" for name in cities.rule_sets[1:]]
    return columns


def metric_cells(cities: Cities) -> Iterator[tuple[str, str, list[tuple[str, str]]]]:
    """Per metric: label, unit and the cells of `metric_columns`, each (figure, what a share is of or "")."""
    several = len(cities.names) > 1
    for metric, rows in cities.summary.groupby("metric", sort=False):
        rows = rows.set_index("rule_set")
        unit = str(rows["unit"].iloc[0])
        cells = []
        for name in cities.rule_sets:
            row = rows.loc[name]
            of = format_share_of(row["part"], row["whole"], row["counted"]) if isinstance(row["counted"], str) else ""
            cells.append((format_interval(row["mean"], row["low"], row["high"], unit), of))
        if several:
            for name in cities.rule_sets[1:]:
                row = rows.loc[name]
                cells.append((format_interval(row["difference"], row["difference_low"], row["difference_high"], unit, signed=True), ""))
        yield str(metric), unit, cells


def render_report(
    cities: Cities, title: str, facts: Mapping[str, str], rule_changes: Mapping[str, Sequence[str]] | None = None
) -> str:
    """The report as HTML text.

    `facts` (label -> text) say where it came from (rule set hashes, tool, cities, events,
    generation time); `rule_changes` (rule set -> sentences, from `rules diff`) what each
    rule set changes from the baseline.
    """
    first = cities.comparisons[0]
    several = len(cities.names) > 1
    sections = []
    if rule_changes is not None:
        sections.append(_section(f"What the rule sets change from {cities.baseline}", _changes_part(rule_changes)))
    sections.append(_section("Metrics", _metrics_intro(cities) + _metrics_table(cities) + _definitions(first)))
    if several:
        sections.append(
            _section(
                "Metrics city by city",
                "<p>One chart per metric: a dot per city (a grey line joins one city's values under each rule set), "
                "the mean and its interval as a bar, rule sets side by side.</p>"
                + _figure(_cities_figure(cities), "Each metric per city and rule set, with the mean and its interval"),
            )
        )
    band = " (band: the interval over the cities)" if several else ""
    sections.append(
        _section(
            "Level shares over time",
            f"<p>Share of the population at each level, rule sets overlaid{band}; time in UTC.</p>"
            + _figure(shares_figure(cities), "Share of the population at yellow and at red, rule sets overlaid"),
        )
    )
    if cities.leak_and_cost is not None:
        sections.append(
            _section(
                "Leak and cost",
                "<p>Per day: infectious person-hours spent green (the leak) and person-days restricted (the cost), "
                f"rule sets overlaid{band}; days start at midnight UTC of the period's first day.</p>"
                + _figure(leak_cost_figure(cities), "Leak and cost per day, rule sets overlaid"),
            )
        )
    where = f" (in city {cities.names[0]})" if several else ""
    sections.append(_section(f"Where the rule sets differ from {cities.baseline}{where}", _disagreement_part(first)))
    if not first.examples.empty:
        sections.append(
            _section(
                f"Example timelines{where}",
                "<p>The persons the rule sets disagree on longest, one row per rule set; time in UTC.</p>"
                + _figure(_examples_figure(first), "Example level timelines"),
            )
        )
    about = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _about(cities, facts).items())
    return _PAGE.format(
        title=escape(title),
        style=_STYLE,
        about=f'<table class="about">{about}</table>',
        body="\n".join(sections),
    )


def _about(cities: Cities, facts: Mapping[str, str]) -> dict[str, str]:
    first = cities.comparisons[0]
    periods = {(c.period.start, c.period.end) for c in cities.comparisons}
    period = first.period
    text = f"{format_rfc3339(period.start)} to {format_rfc3339(period.end)} ({period.seconds / 86400:g} days)"
    populations = [c.population for c in cities.comparisons]
    fewest, most = min(populations), max(populations)
    return {
        "rule sets": ", ".join(cities.rule_sets) + f" (baseline {cities.baseline})",
        "period": text if len(periods) == 1 else f"{len(periods)} periods; the first {text}",
        "population": f"{fewest:,} persons" if fewest == most else f"{fewest:,} to {most:,} persons",
        "cities compared": f"{len(cities.names)}: " + ", ".join(cities.names),
        **facts,
    }


def _changes_part(rule_changes: Mapping[str, Sequence[str]]) -> str:
    parts = []
    for name, changes in rule_changes.items():
        items = "".join(f"<li>{escape(change)}</li>" for change in changes) or "<li>no change in meaning</li>"
        parts.append(f'<h3>{escape(name)}</h3><ul class="changes">{items}</ul>')
    return "\n".join(parts)


def _metrics_intro(cities: Cities) -> str:
    if len(cities.names) == 1:
        return "<p>One city is one draw: compare several (<code>--seeds</code>) to see which differences are chance.</p>"
    percent = round(cities.confidence * 100)
    return (
        f"<p>Over {len(cities.names)} cities: the mean of each metric and its {percent}% confidence interval "
        "(Student&#39;s t over the cities&#39; values). A difference column is the rule set minus the baseline "
        "<em>in the same city</em>, averaged, with its interval: an interval that does not include 0 says the sign of "
        "the difference is not chance. Shares are the mean of the cities&#39; shares; in parentheses, the counts summed "
        "over all cities.</p>"
    )


def _section(heading: str, body: str) -> str:
    return f"<section><h2>{escape(heading)}</h2>\n{body}\n</section>"


def _metrics_table(cities: Cities) -> str:
    head = "".join(f"<th>{escape(column)}</th>" for column in metric_columns(cities))
    definitions = cities.comparisons[0].metrics["definition"]
    rows = []
    for label, unit, cells in metric_cells(cities):
        body = "".join(
            f'<td class="num">{escape(figure)}' + (f'<br><span class="of">{escape(of)}</span>' if of else "") + "</td>"
            for figure, of in cells
        )
        rows.append(
            f'<tr><th scope="row" title="{escape(definitions[label])}">{escape(label)}</th>'
            f'<td class="unit">{escape(unit)}</td>{body}</tr>'
        )
    return f'<table id="metrics"><thead><tr><th>metric</th><th>unit</th>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>'


def _definitions(comparison: Comparison) -> str:
    items = "".join(
        f"<dt>{escape(str(label))}</dt><dd>{escape(definition)}</dd>"
        for label, definition in comparison.metrics["definition"].items()
    )
    return f"<details><summary>How each metric is defined</summary><dl>{items}</dl></details>"


def _disagreement_part(comparison: Comparison) -> str:
    table = comparison.disagreements
    if table.empty:
        return "<p>Every rule set gives every person the same level at every moment.</p>"
    parts = [_figure(_disagreement_figure(comparison), "Persons by the reasons behind a different level")]
    for name, rows in table.groupby("rule_set", sort=False):
        shown, rest = rows.head(DISAGREEMENT_ROWS), rows.iloc[DISAGREEMENT_ROWS:]
        body = "".join(
            "<tr>"
            f"<td>{_level_tag(r.baseline_level)} {escape(r.baseline_reasons)}</td>"
            f"<td>{_level_tag(r.level)} {escape(r.reasons)}</td>"
            f'<td class="num">{r.persons:,}</td><td class="num">{r.person_hours:,.0f}</td>'
            "</tr>"
            for r in shown.itertuples()
        )
        if not rest.empty:
            body += (
                f'<tr><td colspan="2">{len(rest)} other combinations</td>'
                f'<td class="num">{rest["persons"].sum():,}</td><td class="num">{rest["person_hours"].sum():,.0f}</td></tr>'
            )
        parts.append(
            f'<h3>{escape(name)} against {escape(comparison.baseline)}</h3><table class="disagreements">'
            f"<thead><tr><th>{escape(comparison.baseline)}: level, reasons</th><th>{escape(name)}: level, reasons</th>"
            f"<th>persons</th><th>person-hours</th></tr></thead><tbody>{body}</tbody></table>"
        )
    return "\n".join(parts)


def _level_tag(level: str) -> str:
    return f'<span class="level {escape(level)}">{escape(level)}</span>'


def _figure(figure: Figure, alt: str) -> str:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110, bbox_inches="tight")
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<figure><img alt="{escape(alt)}" src="data:image/png;base64,{data}"><figcaption>{escape(alt)}</figcaption></figure>'


def _times(seconds: pd.Series | np.ndarray) -> pd.DatetimeIndex:
    """Epoch seconds as naive UTC datetimes (matplotlib's dates); every axis says it is UTC."""
    return pd.DatetimeIndex(pd.to_datetime(np.asarray(seconds), unit="s", utc=True)).tz_localize(None)


def _period_limits(comparison: Comparison) -> pd.DatetimeIndex:
    return _times(np.array([comparison.period.start, comparison.period.end]))


def _time_axis(axis) -> None:  # type: ignore[no-untyped-def]
    locator = AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))
    axis.set_xlabel(TIME_LABEL)


def _colour(cities: Cities, name: str) -> str:
    return RULE_SET_COLOURS[cities.rule_sets.index(name) % len(RULE_SET_COLOURS)]


def _overlaid(axis, cities: Cities, series: pd.DataFrame, scale: float, step: bool) -> None:  # type: ignore[no-untyped-def]
    """Each rule set's mean as a line on one axis, the interval (several cities) as a band around it.

    The x axis is UTC time when the cities share their period start, else days since each start.
    """
    start = cities.common_start
    for name in cities.rule_sets:
        rows = series[series["rule_set"] == name]
        x = _times(rows["offset"].to_numpy() + start) if start is not None else rows["offset"].to_numpy() / DAY
        where = "post" if step else None
        mean, low, high = (rows[column].to_numpy() * scale for column in ("mean", "low", "high"))
        if step:
            axis.step(x, mean, where="post", color=_colour(cities, name), label=name, linewidth=1.4)
        else:
            axis.plot(x, mean, color=_colour(cities, name), label=name, linewidth=1.4, marker="o", markersize=3)
        if not np.isnan(low).all():
            axis.fill_between(x, low, high, step=where, color=_colour(cities, name), alpha=0.18, linewidth=0)
    axis.set_ylim(bottom=0)
    axis.grid(alpha=0.3)
    if start is not None:
        _time_axis(axis)
    else:
        axis.set_xlabel("days since each city's period start")


def shares_figure(cities: Cities) -> Figure:
    """Share of the population at yellow and at red over time, the rule sets overlaid (the report's chart)."""
    shares = cities.level_shares
    figure = Figure(figsize=(9, 5.2), layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    for axis, level in zip(axes, ("yellow", "red")):
        _overlaid(axis, cities, shares[shares["level"] == level], 100.0, step=True)
        axis.set_ylabel(f"% of persons {level}")
        axis.set_title(f"{level}: share of the population", loc="left", fontsize=10)
    axes[0].legend(loc="upper left", fontsize=8)
    return figure


def leak_cost_figure(cities: Cities) -> Figure:
    """Leak (infectious hours green) and cost (restricted person-days) per day, the rule sets overlaid;
    only for cities compared with their truth."""
    series = cities.leak_and_cost
    assert series is not None
    figure = Figure(figsize=(9, 5.2), layout="constrained")
    axes = figure.subplots(2, 1, sharex=True)
    charts = (
        ("infectious_green_hours", "leak: infectious person-hours green", "person-hours"),
        ("restricted_days", "cost: person-days restricted (yellow or red)", "person-days"),
    )
    for axis, (column, title, unit) in zip(axes, charts):
        rows = series[series["series"] == column]
        # A day's figure is drawn at the middle of its day.
        _overlaid(axis, cities, rows.assign(offset=rows["offset"] + DAY // 2), 1.0, step=False)
        axis.set_ylabel(unit)
        axis.set_title(title, loc="left", fontsize=10)
    axes[0].legend(loc="upper left", fontsize=8)
    return figure


def _cities_figure(cities: Cities) -> Figure:
    """One small chart per metric: every city's value as a dot, the mean with its interval, per rule set."""
    metrics = list(dict.fromkeys(cities.summary["metric"]))
    columns = 3
    rows = math.ceil(len(metrics) / columns)
    figure = Figure(figsize=(9, 1.9 * rows + 0.4), layout="constrained")
    axes = figure.subplots(rows, columns, squeeze=False).ravel()
    per_city = cities.per_city
    for axis, metric in zip(axes, metrics):
        summary = cities.summary[cities.summary["metric"] == metric].set_index("rule_set")
        unit = str(summary["unit"].iloc[0])
        scale = 100.0 if unit == "share" else 1.0
        values = per_city[per_city["metric"] == metric].pivot(index="city", columns="rule_set", values="value")
        values = values[list(cities.rule_sets)] * scale
        # A thin line joins each city's values: the differences are paired, city by city.
        for _, city in values.iterrows():
            axis.plot(range(len(cities.rule_sets)), city.to_numpy(), color="#b0bec5", linewidth=0.7, zorder=1)
        for position, name in enumerate(cities.rule_sets):
            colour = _colour(cities, name)
            axis.plot(np.full(len(values), position), values[name].to_numpy(), "o", color=colour, alpha=0.55, markersize=4)
            row = summary.loc[name]
            if not math.isnan(row["low"]):
                axis.errorbar(
                    position + 0.18, row["mean"] * scale,
                    yerr=[[(row["mean"] - row["low"]) * scale], [(row["high"] - row["mean"]) * scale]],
                    fmt="D", color=colour, markersize=5, capsize=4,
                )  # fmt: skip
        axis.set_title(f"{metric} ({'%' if unit == 'share' else unit})", fontsize=8, loc="left")
        axis.set_xticks(range(len(cities.rule_sets)), [name.split("@")[0] for name in cities.rule_sets], fontsize=7)
        axis.set_xlim(-0.5, len(cities.rule_sets) - 0.3)
        axis.tick_params(axis="y", labelsize=7)
        axis.grid(axis="y", alpha=0.3)
    for axis in axes[len(metrics) :]:
        axis.set_visible(False)
    return figure


def _disagreement_figure(comparison: Comparison) -> Figure:
    table = comparison.disagreements
    top = table.groupby("rule_set", sort=False).head(8).iloc[::-1]
    labels = [
        f"{row.rule_set}: {row.baseline_level} ({row.baseline_reasons}) -> {row.level} ({row.reasons})" for row in top.itertuples()
    ]
    figure = Figure(figsize=(9, 0.35 * len(top) + 1.0), layout="constrained")
    axis = figure.subplots()
    colours = [LEVEL_COLOURS[level] for level in top["level"]]
    axis.barh(range(len(top)), top["persons"], color=colours, edgecolor="#37474f", linewidth=0.5)
    axis.set_yticks(range(len(top)), labels, fontsize=8)
    axis.set_xlabel(f"persons (bar colour: level under the other rule set; baseline {comparison.baseline})")
    axis.grid(axis="x", alpha=0.3)
    return figure


def _examples_figure(comparison: Comparison) -> Figure:
    examples = comparison.examples
    persons = list(dict.fromkeys(examples["person"]))
    lanes = [(person, name) for person in persons for name in comparison.rule_sets]
    figure = Figure(figsize=(9, 0.3 * len(lanes) + 1.0), layout="constrained")
    axis = figure.subplots()
    for lane, (person, name) in enumerate(lanes):
        rows = examples[(examples["person"] == person) & (examples["rule_set"] == name)]
        starts = _times(rows["start"])
        widths = _times(rows["end"]) - starts
        axis.broken_barh(
            list(zip(starts, widths)), (lane - 0.4, 0.8), facecolors=[LEVEL_COLOURS[level] for level in rows["level"]]
        )
    axis.set_yticks(range(len(lanes)), [f"{person} / {name}" for person, name in lanes], fontsize=8)
    axis.invert_yaxis()
    axis.set_xlim(_period_limits(comparison))
    _time_axis(axis)
    figure.legend(
        handles=[Patch(color=c, label=level) for level, c in LEVEL_COLOURS.items()], loc="outside upper right", fontsize=8, ncols=3
    )
    return figure


_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1200px;
       color: #212121; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #cfd8dc; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #cfd8dc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
thead th { background: #eceff1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
td.unit { color: #607d8b; }
td.num .of { color: #607d8b; font-size: .8rem; }
#metrics tbody th { font-weight: 600; cursor: help; }
table.about th { background: #fafafa; font-weight: 600; }
.level { display: inline-block; padding: 0 .4rem; border-radius: .2rem; color: white; font-size: .8rem; }
.level.green { background: #2e7d32; } .level.yellow { background: #f2b705; color: #212121; } .level.red { background: #c62828; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; } figcaption { color: #607d8b; font-size: .85rem; }
dt { font-weight: 600; margin-top: .4rem; } dd { margin-left: 1rem; }
ul.changes { font-size: .9rem; }
"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title}</title>
<style>{style}</style>
</head>
<body>
<h1>{title}</h1>
{about}
{body}
</body>
</html>
"""
