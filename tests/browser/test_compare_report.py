"""The comparison report opened in real headless Chromium, offline: table and charts render."""

import re

import pandas as pd
import pytest

from healthcode.report import render_report
from scoring.compare import Period, compare
from scoring.compare_cities import across_cities

H = 3600
PERIOD = Period(1_648_771_200, 1_648_771_200 + 96 * H)


def timeline(*changes):
    return pd.DataFrame(
        [(person, PERIOD.start + hour * H, level, tuple(rules)) for person, hour, level, rules in changes],
        columns=["person", "at", "level", "reasons"],
    )


@pytest.fixture
def report(tmp_path):
    timelines = {
        "default@1.0.0": timeline(
            ("a", 10, "red", ["close_contact"]), ("a", 60, "green", []), ("b", 5, "yellow", ["companion"]), ("b", 50, "green", [])
        ),
        "points@1.0.0": timeline(("a", 20, "yellow", ["exposure_score"]), ("c", 30, "red", ["exposure_score"])),
    }
    truth = pd.DataFrame(
        {
            "person": ["a", "b", "c", "d"],
            "infected_at": [PERIOD.start + 0.0, None, PERIOD.start + 12.0 * H, None],
            "infectious_from": [PERIOD.start + 24.0 * H, None, PERIOD.start + 20.0 * H, None],
            "infectious_until": [PERIOD.start + 72.0 * H, None, PERIOD.start + 40.0 * H, None],
        }
    )
    path = tmp_path / "report.html"
    cities = across_cities([compare(timelines, PERIOD, truth=truth)], ["hand-made"])
    path.write_text(render_report(cities, "Backtest", {"events": "hand-made"}), encoding="utf-8")
    return path


@pytest.fixture
def cities_report(tmp_path):
    """Three cities in which points flags a later than default by 2, 5 and 9 hours."""
    comparisons = []
    for delay in (2, 5, 9):
        timelines = {
            "default@1.0.0": timeline(("a", 10, "red", ["close_contact"]), ("b", 5, "yellow", ["companion"]), ("b", 50, "green", [])),
            "points@1.0.0": timeline(("a", 10 + delay, "yellow", ["exposure_score"])),
        }
        truth = pd.DataFrame(
            {
                "person": ["a", "b", "c"],
                "infected_at": [PERIOD.start + 0.0, None, None],
                "infectious_from": [PERIOD.start + 8.0 * H, None, None],
                "infectious_until": [PERIOD.start + 72.0 * H, None, None],
            }
        )
        comparisons.append(compare(timelines, PERIOD, truth=truth))
    facts = {"tool": "healthcode 0.1.0", "generated": "2026-12-01T22:00:00Z"}
    changes = {"points@1.0.0": ["rule companion removed", "new points rule exposure_score"]}
    html = render_report(across_cities(comparisons, ["seed 7", "seed 8", "seed 9"]), "Three cities", facts, changes)
    path = tmp_path / "cities.html"
    path.write_text(html, encoding="utf-8")
    return path


def test_the_report_renders_its_table_and_charts_offline(page, report, tmp_path):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(report.as_uri())
    page.wait_for_load_state("load")

    headers = page.locator("#metrics thead th").all_inner_texts()
    assert headers == ["metric", "unit", "default@1.0.0", "points@1.0.0"]
    assert page.locator("#metrics tbody tr").count() == 15
    precision = page.locator("#metrics tbody tr", has_text="precision").locator("td.num").all_inner_texts()
    assert all(re.fullmatch(r"\d+\.\d%\n\([\d.,]+ of [\d.,]+ person-days\)", text) for text in precision), precision

    share = page.locator("#metrics tbody tr", has_text="flagged while infectious").locator("td.num").all_inner_texts()
    assert share == ["50.0%\n(1 of 2)", "100.0%\n(2 of 2)"]  # the denominator on a line of its own

    sizes = page.eval_on_selector_all("img", "images => images.map(i => [i.complete, i.naturalWidth, i.naturalHeight])")
    assert len(sizes) == 4
    assert all(complete and width > 0 and height > 0 for complete, width, height in sizes)
    shown = page.eval_on_selector_all("img", "images => images.map(i => i.getBoundingClientRect().width)")
    assert all(width > 300 for width in shown)

    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")


def test_metric_definitions_open_on_click(page, report):
    page.goto(report.as_uri())
    definition = page.locator("dd").first
    assert not definition.is_visible()
    page.get_by_text("How each metric is defined").click()
    assert definition.is_visible()


def test_several_cities_show_intervals_differences_provenance_and_the_rule_diff(page, cities_report):
    requests = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(cities_report.as_uri())
    page.wait_for_load_state("load")

    headers = page.locator("#metrics thead th").all_inner_texts()
    assert headers == ["metric", "unit", "default@1.0.0", "points@1.0.0", "points@1.0.0 - baseline"]
    green = page.locator("#metrics tbody tr", has_text="infectious hours green (share)").locator("td.num").all_inner_texts()
    # default flags a from 10 h (2 of 64 infectious hours green in each city); points 2+2, 2+5, 2+9 hours
    assert green[0] == "3.1% [3.1%, 3.1%]\n(6.0 of 192.0 person-hours)"
    assert re.fullmatch(r"\d+\.\d% \[\d+\.\d%, \d+\.\d%\]\n\(22\.0 of 192\.0 person-hours\)", green[1]), green[1]
    # paired: 2, 5, 9 more green hours of 64; mean 5.33 h, t(0.95, 2) 2.92 x sd 3.51 h / sqrt(3) = 5.92 h either side
    assert green[2] == "+8.3 pt [-0.9 pt, +17.6 pt]"

    about = dict(zip(page.locator("table.about th").all_inner_texts(), page.locator("table.about td").all_inner_texts()))
    assert about["tool"] == "healthcode 0.1.0" and about["generated"] == "2026-12-01T22:00:00Z"
    assert about["cities compared"] == "3: seed 7, seed 8, seed 9"
    assert page.locator("ul.changes li").all_inner_texts() == ["rule companion removed", "new points rule exposure_score"]

    alts = page.eval_on_selector_all("img", "images => images.map(i => [i.alt, i.complete && i.naturalWidth > 0])")
    assert [alt for alt, _ in alts] == [
        "Each metric per city and rule set, with the mean and its interval",
        "Share of the population at yellow and at red, rule sets overlaid",
        "Leak and cost per day, rule sets overlaid",
        "Persons by the reasons behind a different level",
        "Example level timelines",
    ]
    assert all(loaded for _, loaded in alts)
    assert all(url.startswith(("file://", "data:")) for url in requests), requests
    shot = cities_report.parent / "cities.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes().startswith(b"\x89PNG")
