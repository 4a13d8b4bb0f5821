"""The HTML report: self-contained, every table and chart present, every name escaped."""

import base64
import re

import pandas as pd
import pytest

from healthcode.report import format_interval, format_share_of, format_value, render_report
from scoring.compare import Period, compare
from scoring.compare_cities import across_cities

H = 3600
PERIOD = Period(1_648_771_200, 1_648_771_200 + 72 * H)


def timeline(*changes):
    return pd.DataFrame(
        [(person, PERIOD.start + hour * H, level, tuple(rules)) for person, hour, level, rules in changes],
        columns=["person", "at", "level", "reasons"],
    )


TIMELINES = {
    "default@1.0.0": timeline(("a", 10, "red", ["close_contact"]), ("a", 40, "green", []), ("b", 5, "yellow", ["companion"])),
    "<b>points</b>@1.0.0": timeline(("a", 20, "yellow", ["exposure_score"])),
}
TRUTH = pd.DataFrame(
    {
        "person": ["a", "b", "c"],
        "infected_at": [PERIOD.start + 0.0, None, PERIOD.start + 12.0 * H],
        "infectious_from": [PERIOD.start + 24.0 * H, None, PERIOD.start + 20.0 * H],
        "infectious_until": [PERIOD.start + 48.0 * H, None, PERIOD.start + 40.0 * H],
    }
)


def one_city(timelines, truth=None):
    return across_cities([compare(timelines, PERIOD, truth=truth)], ["hand-made"])


@pytest.fixture(scope="module")
def html():
    return render_report(one_city(TIMELINES, TRUTH), "Spring backtest", {"events": "sim/events.parquet"})


def images(text):
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', text)


def test_the_report_embeds_every_chart_as_a_png(html):
    found = images(html)
    assert [alt for alt, _ in found] == [
        "Share of the population at yellow and at red, rule sets overlaid",
        "Leak and cost per day, rule sets overlaid",
        "Persons by the reasons behind a different level",
        "Example level timelines",
    ]
    for _, data in found:
        assert base64.b64decode(data).startswith(b"\x89PNG\r\n\x1a\n")


def test_the_report_needs_no_network_to_open(html):
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)
    assert "@import" not in html and "<script" not in html


def test_the_metrics_table_has_one_column_per_rule_set_and_every_metric(html):
    table = re.search(r'<table id="metrics">.*?</table>', html, re.S).group(0)
    assert "<th>default@1.0.0</th>" in table and "<th>&lt;b&gt;points&lt;/b&gt;@1.0.0</th>" in table
    for metric in ("persons ever restricted", "flagged while infectious", "infectious hours green", "precision"):
        assert f">{metric}</th>" in table
    assert table.count("<tr>") == 1 + 15


def test_names_from_the_rule_sets_are_escaped(html):
    assert "<b>points</b>" not in html


def test_the_report_states_the_run_and_defines_each_metric(html):
    assert "<title>Spring backtest</title>" in html
    assert "sim/events.parquet" in html and "2022-04-01T00:00:00Z to 2022-04-04T00:00:00Z (3 days)" in html
    assert "<dt>precision</dt><dd>Share of all yellow and red person-days" in html


def test_the_disagreement_table_names_the_reasons_on_both_sides(html):
    assert '<span class="level red">red</span> close_contact</td><td><span class="level green">green</span> none' in html


def test_without_truth_the_report_leaves_out_leak_and_cost():
    html = render_report(one_city(TIMELINES), "Recorded week", {})
    assert "Leak and cost" not in html and "infectious hours green" not in html
    assert len(images(html)) == 3


def test_rule_sets_that_agree_are_said_to_agree():
    same = {"default@1.0.0": TIMELINES["default@1.0.0"], "copy@1.0.0": TIMELINES["default@1.0.0"]}
    html = render_report(one_city(same), "Same", {})
    assert "Every rule set gives every person the same level at every moment." in html
    assert "Example timelines" not in html


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(0.1234, "share", "12.3%"), (12345.0, "persons", "12,345"), (1234.56, "person-days", "1,234.6"), (float("nan"), "share", "n/a")],
)
def test_values_are_formatted_for_reading(value, unit, text):
    assert format_value(value, unit) == text


def test_shares_show_what_they_are_shares_of(html):
    table = re.search(r'<table id="metrics">.*?</table>', html, re.S).group(0)
    row = re.search(r">flagged while infectious</th>(.*?)</tr>", table, re.S).group(1)
    # a and c are infectious; default flags a (red 10-40 h, infectious 24-48 h), points flags a (yellow from 20 h)
    assert '<td class="num">50.0%<br><span class="of">(1 of 2)</span></td>' in row


def test_the_report_lists_what_each_rule_set_changes_and_where_it_came_from():
    facts = {"tool": "healthcode 0.1.0", "generated": "2026-12-01T22:00:00Z", "rule sets": "default@1.0.0 sha256 ab12"}
    changes = {"<b>points</b>@1.0.0": ["rule companion removed", "points rule exposure_score added"]}
    html = render_report(one_city(TIMELINES, TRUTH), "Backtest", facts, changes)
    assert "What the rule sets change from default@1.0.0" in html
    assert "<li>rule companion removed</li><li>points rule exposure_score added</li>" in html
    assert "<th>tool</th><td>healthcode 0.1.0</td>" in html and "<th>generated</th><td>2026-12-01T22:00:00Z</td>" in html
    assert "<h3>&lt;b&gt;points&lt;/b&gt;@1.0.0</h3>" in html


def test_rule_sets_share_one_chart_per_level_and_time_is_utc():
    from healthcode.report import leak_cost_figure, shares_figure

    cities = one_city(TIMELINES, TRUTH)
    for figure in (shares_figure(cities), leak_cost_figure(cities)):
        for axis in figure.axes:
            assert len(axis.get_lines()) == 2  # both rule sets on the same chart
            assert axis.get_xlabel() == "time (UTC)"


def test_over_several_cities_the_report_shows_intervals_and_differences():
    other = {name: frame.assign(at=frame["at"] + 2 * H) for name, frame in TIMELINES.items()}
    third = {name: frame.assign(at=frame["at"] + 5 * H) for name, frame in TIMELINES.items()}
    comparisons = [compare(t, PERIOD, truth=TRUTH) for t in (TIMELINES, other, third)]
    html = render_report(across_cities(comparisons, ["seed 1", "seed 2", "seed 3"]), "Three", {})
    assert "<th>&lt;b&gt;points&lt;/b&gt;@1.0.0 - baseline</th>" in html
    assert "90% confidence interval" in html and "Metrics city by city" in html
    row = re.search(r">infectious hours green</th>(.*?)</tr>", html, re.S).group(1)
    assert re.search(r'<td class="num">[\d.,]+ \[[\d.,]+, [\d.,]+\]</td>', row), row
    assert "<th>cities compared</th><td>3: seed 1, seed 2, seed 3</td>" in html
    assert len(images(html)) == 5


@pytest.mark.parametrize(
    ("args", "text"),
    [
        ((0.5, 0.4, 0.6, "share"), "50.0% [40.0%, 60.0%]"),
        ((12.0, float("nan"), float("nan"), "persons"), "12"),
        ((-0.05, -0.08, -0.02, "share", True), "-5.0 pt [-8.0 pt, -2.0 pt]"),
        ((3.25, 1.0, 5.5, "hours", True), "+3.2 [+1.0, +5.5]"),
    ],
)
def test_intervals_read_as_mean_and_bounds(args, text):
    assert format_interval(*args) == text


def test_a_share_says_of_what():
    assert format_share_of(5, 5, "persons") == "(5 of 5)"
    assert format_share_of(65.0, 105.0, "person-hours") == "(65.0 of 105.0 person-hours)"
