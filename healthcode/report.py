"""The comparison report: one self-contained HTML file an epidemiologist can open anywhere.

Charts are drawn with matplotlib (object API, no pyplot state) and embedded as base64
PNG; the style sheet is inline; nothing is fetched from the network when it is opened.
`render_report` only turns a `Comparison` into text: writing the file is the caller's.
"""

from __future__ import annotations

import base64
import io
import math
from collections.abc import Mapping, Sequence
from html import escape

import pandas as pd
from matplotlib.dates import AutoDateLocator, ConciseDateFormatter
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from scoring.compare import Comparison
from scoring.timeutil import format_rfc3339

LEVEL_COLOURS = {"green": "#2e7d32", "yellow": "#f2b705", "red": "#c62828"}
LEAK_COLOUR = "#6a1b9a"
COST_COLOUR = "#90a4ae"
DISAGREEMENT_ROWS = 12
"""Reason pairs listed per rule set; the rest are summed into one line."""


def format_value(value: float, unit: str) -> str:
    """A metric as a reader wants it: shares in percent, counts whole, the rest to one decimal."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    if unit == "share":
        return f"{100 * value:.1f}%"
    if unit == "persons":
        return f"{value:,.0f}"
    return f"{value:,.1f}"


def render_report(comparison: Comparison, title: str, facts: Mapping[str, str]) -> str:
    """The report as HTML text; `facts` (label -> text) describe the run (events file, command, ...)."""
    sections = [
        _section("Metrics", _metrics_table(comparison) + _definitions(comparison)),
        _section(
            "Level shares over time",
            _figure(_shares_figure(comparison), "Share of the population at yellow and red, per rule set"),
        ),
    ]
    if comparison.leak_and_cost is not None:
        sections.append(
            _section(
                "Leak and cost",
                "<p>Per day: infectious person-hours spent green (the leak, line) against person-days "
                "restricted (the cost, bars).</p>"
                + _figure(_leak_cost_figure(comparison.leak_and_cost, comparison.rule_sets), "Leak and cost per day, per rule set"),
            )
        )
    sections.append(_section(f"Where the rule sets differ from {comparison.baseline}", _disagreement_part(comparison)))
    if not comparison.examples.empty:
        sections.append(
            _section(
                "Example timelines",
                "<p>The persons the rule sets disagree on longest, one row per rule set.</p>"
                + _figure(_examples_figure(comparison), "Example level timelines"),
            )
        )
    about = "".join(f"<tr><th>{escape(k)}</th><td>{escape(v)}</td></tr>" for k, v in _about(comparison, facts).items())
    return _PAGE.format(
        title=escape(title),
        style=_STYLE,
        about=f'<table class="about">{about}</table>',
        body="\n".join(sections),
    )


def _about(comparison: Comparison, facts: Mapping[str, str]) -> dict[str, str]:
    period = comparison.period
    return {
        "rule sets": ", ".join(comparison.rule_sets) + f" (baseline {comparison.baseline})",
        "period": f"{format_rfc3339(period.start)} to {format_rfc3339(period.end)} ({period.seconds / 86400:g} days)",
        "population": f"{comparison.population:,} persons",
        **facts,
    }


def _section(heading: str, body: str) -> str:
    return f"<section><h2>{escape(heading)}</h2>\n{body}\n</section>"


def _metrics_table(comparison: Comparison) -> str:
    head = "".join(f"<th>{escape(name)}</th>" for name in comparison.rule_sets)
    rows = []
    for label, row in comparison.metrics.iterrows():
        cells = "".join(f'<td class="num">{escape(format_value(row[name], row["unit"]))}</td>' for name in comparison.rule_sets)
        rows.append(
            f'<tr><th scope="row" title="{escape(row["definition"])}">{escape(str(label))}</th>'
            f'<td class="unit">{escape(row["unit"])}</td>{cells}</tr>'
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


def _times(seconds: pd.Series) -> pd.DatetimeIndex:
    return pd.DatetimeIndex(pd.to_datetime(seconds.to_numpy(), unit="s", utc=True)).tz_localize(None)


def _period_limits(comparison: Comparison) -> pd.DatetimeIndex:
    return _times(pd.Series([comparison.period.start, comparison.period.end]))


def _time_axis(axis) -> None:  # type: ignore[no-untyped-def]
    locator = AutoDateLocator()
    axis.xaxis.set_major_locator(locator)
    axis.xaxis.set_major_formatter(ConciseDateFormatter(locator))


def _panels(count: int, height: float) -> tuple[Figure, Sequence]:
    figure = Figure(figsize=(9, height * count), layout="constrained")
    axes = figure.subplots(count, 1, sharex=True, squeeze=False)[:, 0]
    return figure, axes


def _shares_figure(comparison: Comparison) -> Figure:
    shares = comparison.level_shares
    figure, axes = _panels(len(comparison.rule_sets), 2.0)
    top = max(float((shares["yellow"] + shares["red"]).max()) * 100 * 1.1, 0.1)
    for axis, name in zip(axes, comparison.rule_sets):
        rows = shares[shares["rule_set"] == name]
        axis.stackplot(
            _times(rows["start"]),
            rows["red"] * 100,
            rows["yellow"] * 100,
            colors=[LEVEL_COLOURS["red"], LEVEL_COLOURS["yellow"]],
            labels=["red", "yellow"],
            step="post",
        )
        axis.set_ylim(0, top)
        axis.set_ylabel("% of persons")
        axis.set_title(name, loc="left", fontsize=10)
        axis.grid(alpha=0.3)
        _time_axis(axis)
        axis.set_xlim(_period_limits(comparison))
    axes[0].legend(loc="upper left", fontsize=8)
    return figure


def _leak_cost_figure(series: pd.DataFrame, rule_sets: Sequence[str]) -> Figure:
    figure, axes = _panels(len(rule_sets), 2.2)
    cost_top = max(float(series["restricted_days"].max()) * 1.1, 1.0)
    leak_top = max(float(series["infectious_green_hours"].max()) * 1.1, 1.0)
    for axis, name in zip(axes, rule_sets):
        rows = series[series["rule_set"] == name]
        days = _times(rows["start"])
        axis.bar(days, rows["restricted_days"], width=0.9, align="edge", color=COST_COLOUR, label="restricted person-days")
        axis.set_ylim(0, cost_top)
        axis.set_ylabel("person-days", color="#455a64")
        leak = axis.twinx()
        leak.plot(days + pd.Timedelta(hours=12), rows["infectious_green_hours"], color=LEAK_COLOUR, marker="o", markersize=3, label="infectious hours green")
        leak.set_ylim(0, leak_top)
        leak.set_ylabel("infectious hours green", color=LEAK_COLOUR)
        axis.set_title(name, loc="left", fontsize=10)
        _time_axis(axis)
    handles = [Patch(color=COST_COLOUR, label="cost: restricted person-days"), Patch(color=LEAK_COLOUR, label="leak: infectious person-hours green")]
    axes[0].legend(handles=handles, loc="upper left", fontsize=8)
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
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 2rem auto; max-width: 1000px;
       color: #212121; line-height: 1.4; padding: 0 1rem; }
h1 { font-size: 1.6rem; } h2 { border-bottom: 1px solid #cfd8dc; padding-bottom: .2rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: .5rem 0 1rem; font-size: .9rem; }
th, td { border: 1px solid #cfd8dc; padding: .25rem .6rem; text-align: left; vertical-align: top; }
thead th { background: #eceff1; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
td.unit { color: #607d8b; }
#metrics tbody th { font-weight: 600; cursor: help; }
table.about th { background: #fafafa; font-weight: 600; }
.level { display: inline-block; padding: 0 .4rem; border-radius: .2rem; color: white; font-size: .8rem; }
.level.green { background: #2e7d32; } .level.yellow { background: #f2b705; color: #212121; } .level.red { background: #c62828; }
figure { margin: 1rem 0; } figure img { max-width: 100%; height: auto; } figcaption { color: #607d8b; font-size: .85rem; }
dt { font-weight: 600; margin-top: .4rem; } dd { margin-left: 1rem; }
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
