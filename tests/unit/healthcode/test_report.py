"""The HTML report: self-contained, every table and chart present, every name escaped."""

import base64
import re

import pandas as pd
import pytest

from healthcode.report import format_value, render_report
from scoring.compare import Period, compare

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


@pytest.fixture(scope="module")
def html():
    return render_report(compare(TIMELINES, PERIOD, truth=TRUTH), "Spring backtest", {"events": "sim/events.parquet"})


def images(text):
    return re.findall(r'<img alt="([^"]*)" src="data:image/png;base64,([^"]+)"', text)


def test_the_report_embeds_every_chart_as_a_png(html):
    found = images(html)
    assert [alt for alt, _ in found] == [
        "Share of the population at yellow and red, per rule set",
        "Leak and cost per day, per rule set",
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
    html = render_report(compare(TIMELINES, PERIOD), "Recorded week", {})
    assert "Leak and cost" not in html and "infectious hours green" not in html
    assert len(images(html)) == 3


def test_rule_sets_that_agree_are_said_to_agree():
    same = {"default@1.0.0": TIMELINES["default@1.0.0"], "copy@1.0.0": TIMELINES["default@1.0.0"]}
    html = render_report(compare(same, PERIOD), "Same", {})
    assert "Every rule set gives every person the same level at every moment." in html
    assert "Example timelines" not in html


@pytest.mark.parametrize(
    ("value", "unit", "text"),
    [(0.1234, "share", "12.3%"), (12345.0, "persons", "12,345"), (1234.56, "person-days", "1,234.6"), (float("nan"), "share", "n/a")],
)
def test_values_are_formatted_for_reading(value, unit, text):
    assert format_value(value, unit) == text
