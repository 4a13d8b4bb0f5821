"""The comparison report opened in real headless Chromium, offline: table and charts render."""

import pandas as pd
import pytest

from healthcode.report import render_report
from scoring.compare import Period, compare

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
    path.write_text(render_report(compare(timelines, PERIOD, truth=truth), "Backtest", {"events": "hand-made"}), encoding="utf-8")
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
    assert all(text.endswith("%") for text in precision)

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
