"""How fast the checkpoint page reaches a verdict, in real headless Chromium.

    .venv/bin/python -m tests.browser.speed [--codes 1000] [--camera 20]

Typed: 1,000 fresh, valid codes (distinct persons, Ed25519 and ES256 alternating) go
through #code-input with Enter; the page times each from the submit event to the verdict
written into the page. Camera: a fake capture device plays a video of distinct QR codes;
the page times each from grabbing the frame to the verdict (frame copy, zxing-wasm
decode, verification). Prints p50, p99 and max. A measurement, not a test: nothing here
fails on time.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from playwright.sync_api import sync_playwright

from codes import Algorithm, ListTimes, SigningKey, dump_revocation_list, dump_trust_list, generate_signing_key, issue, sign_list
from codes.trust import record_of
from tests.browser.checkpoint_helpers import checkpoint_server, open_page, qr_frame, write_y4m
from tests.browser.conftest import CHROMIUM, CHROMIUM_ARGS


def _lists(directory: Path, keys: list[SigningKey], now: int) -> None:
    list_key = generate_signing_key(Algorithm.EDDSA, now - 60, now + 86400)
    times = ListTimes(now - 60, now + 86400)
    (directory / "trust.json").write_bytes(sign_list(list_key, dump_trust_list([key.info for key in keys], times)))
    (directory / "revoked.json").write_bytes(sign_list(list_key, dump_revocation_list([], times)))
    (directory / "list-key.json").write_text(record_of(list_key.info).model_dump_json())


def _summary(name: str, samples: list[float]) -> str:
    ordered = sorted(samples)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return (f"{name}: n={len(samples)}  p50 {statistics.median(ordered):.1f} ms  p99 {p99:.1f} ms  "
            f"max {ordered[-1]:.1f} ms  mean {statistics.fmean(ordered):.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--codes", type=int, default=1000)
    parser.add_argument("--camera", type=int, default=40)
    args = parser.parse_args()
    now = int(time.time())
    keys = [generate_signing_key(alg, now - 3600, now + 86400) for alg in (Algorithm.EDDSA, Algorithm.ES256)]
    codes = [
        issue(keys[i % 2], person=f"p-{i:05d}", level="green", rule_set="default@1", issued_at=now - 60, expires_at=now + 3600)
        for i in range(max(args.codes, args.camera))
    ]
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(scratch)
        _lists(directory, keys, now)
        video = directory / "codes.y4m"
        write_y4m(video, [qr_frame(code) for code in codes[: args.camera]], repeat=5)
        fake_camera = ["--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream", f"--use-file-for-fake-video-capture={video}"]
        with checkpoint_server(directory, lists=directory) as server, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS + fake_camera)
            try:
                page = browser.new_page()
                open_page(page, server.url)
                for count, code in enumerate(codes[: args.codes], start=1):
                    page.fill("#code-input", code)
                    page.press("#code-input", "Enter")
                    page.wait_for_selector(f"#verdict[data-verdicts='{count}']")
                    assert page.get_attribute("#verdict", "data-reason") == "OK", code
                timings = page.evaluate("window.checkpoint.timings")
                print(_summary("typed code to verdict in the page", timings["input"]), flush=True)
                print(_summary("typed code to the next frame", timings["inputFrame"]), flush=True)

                camera = browser.new_page()
                camera.context.grant_permissions(["camera"])
                open_page(camera, server.url, extra="camera=on")
                camera.wait_for_selector(f"#verdict[data-verdicts='{args.camera}']", timeout=300_000)
                assert camera.get_attribute("#verdict", "data-reason") == "OK"
                timings = camera.evaluate("window.checkpoint.timings")
                print(f"camera: first scan {timings['camera'][0]:.1f} ms (decoder warm-up included)")
                print(_summary("camera frame to verdict in the page, after the first", timings["camera"][1:]))
                print(_summary("camera frame to the next frame, after the first", timings["cameraFrame"][1:]))
            finally:
                browser.close()


if __name__ == "__main__":
    main()
