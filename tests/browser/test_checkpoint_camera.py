"""A code shown to the checkpoint page's camera (Chromium's fake capture device playing a
video of the QR code) is decoded by zxing-wasm and verified through to a verdict."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.checkpoint_helpers import Server, checkpoint_server, moment, open_page, qr_frame, vector, write_y4m
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("camera") / "code.y4m"
    write_y4m(path, [qr_frame(vector("ok_es256")["code"])], repeat=10)
    return path


@pytest.fixture(scope="module")
def camera_browser(video: Path) -> Iterator[Browser]:
    fake_camera = [
        "--use-fake-device-for-media-stream",
        "--use-fake-ui-for-media-stream",
        f"--use-file-for-fake-video-capture={video}",
    ]
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + fake_camera)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    with checkpoint_server(tmp_path_factory.mktemp("checkpoint")) as running:
        yield running


def test_a_code_held_to_the_camera_gets_a_verdict(camera_browser: Browser, server: Server) -> None:
    context = camera_browser.new_context(viewport={"width": 1100, "height": 900}, permissions=["camera"])
    try:
        page = context.new_page()
        page.clock.set_fixed_time(moment("2022-04-11T09:00:00Z"))
        open_page(page, server.url, extra="camera=on")
        page.wait_for_selector("#verdict[data-verdicts='1']")
        verdict = page.locator("#verdict")
        assert (verdict.get_attribute("data-reason"), verdict.get_attribute("data-level")) == ("OK", "green")
        assert page.inner_text("#verdict-word") == "ADMIT"
        assert page.is_visible("#camera") and page.inner_text("#camera-toggle") == "Stop camera"
        # The same code in front of the camera is one verdict, not one per frame.
        page.wait_for_timeout(1500)
        assert page.get_attribute("#verdict", "data-verdicts") == "1"
        assert page.evaluate("window.checkpoint.timings.camera.length") == 1
    finally:
        context.close()
