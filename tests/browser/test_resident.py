"""The resident page in real Chromium against a worker's web routes (no broker: a settled view).

A resident opens /app/resident with their pseudonym and token in the URL fragment: the
page shows their code large enough to scan, the level as a word and as the colour around
it, their reasons in words, refreshes the code before it expires, and offline shows the
last code and when it expires. The screenshot's QR is read back with zxing-cpp and
verified as a checkpoint would.
"""

from __future__ import annotations

import asyncio
import io
from datetime import datetime, timezone
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from aiohttp import web
from PIL import Image
from playwright.sync_api import Browser, Page

from codes import Algorithm, Level, Reason, SigningKey, TrustList, generate_signing_key, read_qr, verify
from codes.access import resident_token
from scoring.timeutil import format_rfc3339
from streams.step import WorkerView
from streams.testing import resident_web
from streams.web import make_app

SECRET = bytes(range(32))
GREEN, RED = "p000010", "p000020"
PHONE = {"width": 390, "height": 844}
COLOURS = {"green": "rgb(26, 127, 55)", "red": "rgb(198, 40, 40)"}
# Where the screenshots go for people to look at (tests keep theirs in a temporary directory).
SHOTS = os.environ.get("RESIDENT_SCREENSHOTS")


@dataclass
class Worker:
    url: str
    view: WorkerView
    key: SigningKey
    clock: list[float]
    """The worker's wall clock, which tests move on."""


def _red_record(at: int, rule_set: str) -> dict:
    reason = {"evidence": [{"signal": "close_contact", "source": "c0ffee0123456789", "minutes": 31.0}]}
    return {
        "type": "code", "person": RED, "level": "red", "rule_set": rule_set, "assessed_at": format_rfc3339(at - 3600),
        "reasons": [
            {**reason, "rule": "close_contact", "level": "red", "since": format_rfc3339(at - 2 * 86_400),
             "until": format_rfc3339(at + 12 * 86_400)},
            {"rule": "fever_clinic", "level": "yellow", "since": format_rfc3339(at - 86_400),
             "until": format_rfc3339(at + 13 * 86_400), "evidence": [{"signal": "fever_clinic"}]},
        ],
    }


@pytest.fixture
def worker() -> Iterator[Worker]:
    """A worker whose clock reads now when the test starts: the page judges expiry by the real
    clock, so a worker started minutes earlier (a module's fixture on a slow run) would hand out
    codes the page already shows as expired."""
    at = int(time.time())
    key = generate_signing_key(Algorithm.EDDSA, at - 3600, at + 86_400)
    clock = [float(at)]
    view, config = resident_web([key], SECRET, 4, at, [GREEN, RED])
    config.clock = lambda: clock[0]
    view.codes[RED] = _red_record(at, config.rules.ref)
    loop = asyncio.new_event_loop()
    started = threading.Event()
    holder: dict[str, object] = {}

    async def serve() -> None:
        runner = web.AppRunner(make_app(view, config))
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        holder["runner"] = runner
        holder["port"] = runner.addresses[0][1]
        started.set()

    thread = threading.Thread(target=lambda: (loop.run_until_complete(serve()), loop.run_forever()), daemon=True)
    thread.start()
    assert started.wait(30), "the web app did not start"
    try:
        yield Worker(f"http://127.0.0.1:{holder['port']}", view, key, clock)
    finally:
        asyncio.run_coroutine_threadsafe(holder["runner"].cleanup(), loop).result(30)  # type: ignore[attr-defined]
        loop.call_soon_threadsafe(loop.stop)
        thread.join(30)


@pytest.fixture
def phone(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, timezone_id="Asia/Shanghai")
    try:
        yield context.new_page()
    finally:
        context.close()


def _open(page: Page, worker: Worker, person: str) -> None:
    page.goto(f"{worker.url}/app/resident#person={person}&token={resident_token(SECRET, person)}")
    page.wait_for_selector("main[data-state=current]")
    _drawn(page)


def _drawn(page: Page) -> None:
    # Polled from here: the page's CSP forbids the string evaluation wait_for_function uses.
    while not page.evaluate("() => { const qr = document.getElementById('qr'); return qr.complete && qr.naturalWidth > 0; }"):
        page.wait_for_timeout(50)


def _scanned(page: Page, path: Path) -> str:
    page.screenshot(path=str(path), full_page=True)
    (code,) = read_qr(Image.open(io.BytesIO(path.read_bytes())))
    return code


def _shot(tmp_path: Path, name: str) -> Path:
    return Path(SHOTS) / name if SHOTS else tmp_path / name


@pytest.mark.parametrize("person", [GREEN, RED])
def test_the_page_shows_a_scannable_code_that_verifies_with_the_level_in_words_and_colour(
    phone: Page, worker: Worker, tmp_path: Path, person: str
) -> None:
    level = "green" if person == GREEN else "red"
    _open(phone, worker, person)
    code = _scanned(phone, _shot(tmp_path, f"resident-{level}.png"))
    verdict = verify(code, TrustList.of([worker.key.info]), at=int(worker.clock[0]) + 1, admit=tuple(Level))
    assert (verdict.reason, verdict.person, verdict.level) == (Reason.OK, person, level)
    assert phone.inner_text("#level-word") == level.upper()
    assert phone.eval_on_selector("#frame", "e => getComputedStyle(e).backgroundColor") == COLOURS[level]
    box = phone.locator("#qr").bounding_box()
    assert box is not None and box["width"] >= 300 and box["x"] + box["width"] <= PHONE["width"], "large, on screen"
    assert "#" not in phone.url and "token" not in phone.url, "the token is taken out of the address bar"
    assert phone.locator("#login").is_hidden(), "no sign-in form under the code"
    assert "Asia/Shanghai" in phone.inner_text("#zone")


def test_reasons_are_in_words_with_lapse_dates_in_the_residents_zone_and_how_to_clear_early(
    phone: Page, worker: Worker
) -> None:
    _open(phone, worker, RED)
    reasons = phone.locator("#reason-list > li")
    assert reasons.count() == 2
    first, second = reasons.nth(0).inner_text(), reasons.nth(1).inner_text()
    assert first.startswith("RED: a close contact exposure to a case")
    lapse = phone.evaluate(
        "new Intl.DateTimeFormat(undefined, {year: 'numeric', month: 'short', day: 'numeric', hour: '2-digit',"
        " minute: '2-digit', timeZoneName: 'short'})"
        f".format(new Date({(int(worker.clock[0]) + 12 * 86_400) * 1000}))"
    )
    assert f"lapses {lapse}" in first and "GMT+8" in lapse
    assert "Clears early with a negative PCR or antigen test taken after the visit." in second
    assert "c0ffee" not in phone.content()


def test_the_code_is_refreshed_before_it_expires(phone: Page, worker: Worker) -> None:
    phone.clock.install(time=datetime.fromtimestamp(worker.clock[0], timezone.utc))
    _open(phone, worker, GREEN)
    assert abs(phone.evaluate("() => Date.now()") / 1000 - worker.clock[0]) < 60, "the page's clock is the worker's"
    first = phone.get_attribute("main", "data-expires")
    phone.clock.run_for(140_000)  # not yet half way through the code's five minutes
    assert phone.get_attribute("main", "data-expires") == first
    worker.clock[0] += 200  # past the time a code is given again
    try:
        phone.clock.run_for(20_000)  # past half way
        phone.wait_for_selector(f"main[data-state=current]:not([data-expires='{first}'])")
    finally:
        worker.clock[0] -= 200


def test_offline_the_page_shows_the_last_code_and_says_when_it_expires(phone: Page, worker: Worker, tmp_path: Path) -> None:
    _open(phone, worker, GREEN)
    phone.evaluate("navigator.serviceWorker.ready.then(() => true)")
    phone.reload()  # now under the service worker
    phone.wait_for_selector("main[data-state=current]")
    phone.context.set_offline(True)
    phone.reload()
    phone.wait_for_selector("main[data-state=offline]")
    _drawn(phone)
    notice = phone.inner_text("#notice")
    assert notice.startswith("Offline: this is your last code. It stops being valid at")
    assert phone.inner_text("#level-word") == "GREEN"
    code = _scanned(phone, _shot(tmp_path, "resident-offline.png"))
    assert verify(code, TrustList.of([worker.key.info]), at=int(worker.clock[0]) + 1).person == GREEN


def test_a_wrong_token_asks_for_the_pseudonym_and_token_again(phone: Page, worker: Worker) -> None:
    phone.goto(f"{worker.url}/app/resident#person={GREEN}&token={resident_token(SECRET, RED)}")
    phone.wait_for_selector("#login:not([hidden])")
    assert phone.inner_text("#login-error") == "That pseudonym and token were not accepted."
    phone.fill("#person", GREEN)
    phone.fill("#token", resident_token(SECRET, GREEN))
    phone.click("button[type=submit]")
    phone.wait_for_selector("main[data-state=current]")
    assert phone.inner_text("#level-word") == "GREEN"
