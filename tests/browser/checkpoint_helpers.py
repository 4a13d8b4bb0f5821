"""Running `healthcode checkpoint serve` for browser tests, typing codes into the page,
and making a fake camera's video (Y4M) of QR codes."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
from PIL import Image
from playwright.sync_api import Page

from codes import render_qr
from tests.vectors.verdict import verdict_of

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors"
LISTS = VECTORS / "lists"
HEALTHCODE = str(Path(sys.executable).parent / "healthcode")


def vector(name: str) -> dict[str, Any]:
    return orjson.loads((VECTORS / f"{name}.json").read_bytes())


def python_verdict(case: dict[str, Any]) -> tuple[str, str]:
    """The Python verifier's reason for a vector, and the level it may show ('' unless verified)."""
    verdict = verdict_of(case)
    shown = verdict.level.value if verdict.level and verdict.reason.claims_verified else ""
    return verdict.reason.value, shown


def moment(rfc3339: str) -> datetime:
    return datetime.fromisoformat(rfc3339.replace("Z", "+00:00"))


@dataclass
class Server:
    """A running checkpoint server: its page URL and the list files it serves."""

    url: str
    directory: Path
    process: subprocess.Popen[str]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


@contextmanager
def checkpoint_server(directory: Path, *, pin: bool = True, lists: Path = LISTS) -> Iterator[Server]:
    """`healthcode checkpoint serve` on a free port over copies of the signed lists in
    `lists` (the vectors' by default) put in `directory` (tests may replace them), pinning
    the list key unless `pin` is False."""
    for name in ("trust.json", "revoked.json", "list-key.json"):
        if directory != lists:
            shutil.copy(lists / name, directory / name)
    args = [HEALTHCODE, "checkpoint", "serve", "--port", "0", "--trust", str(directory / "trust.json"),
            "--revoked", str(directory / "revoked.json")]
    if pin:
        args += ["--list-key", str(directory / "list-key.json")]
    process = subprocess.Popen(args, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, cwd=ROOT)
    assert process.stderr is not None
    said = []
    for line in process.stderr:
        said.append(line)
        if "checkpoint page at " in line:
            url = line.split("checkpoint page at ", 1)[1].split()[0]
            break
    else:
        process.wait()
        raise AssertionError(f"checkpoint serve exited {process.returncode}: {''.join(said)}")
    # Keep reading so the server never blocks on a full pipe.
    threading.Thread(target=process.stderr.read, daemon=True).start()
    server = Server(url, directory, process)
    try:
        yield server
    finally:
        server.stop()


def open_page(page: Page, url: str, admit: list[str] | None = None, extra: str = "") -> None:
    query = "&".join(part for part in (f"admit={','.join(admit)}" if admit else "", extra) if part)
    page.goto(url + (f"?{query}" if query else ""))
    page.wait_for_selector("body[data-ready=true]")


def enter(page: Page, code: str) -> tuple[str, str]:
    """Type a code into #code-input with Enter, as a keyboard-wedge scanner does; the
    verdict's data-reason and data-level."""
    verdict = page.locator("#verdict")
    done = int(verdict.get_attribute("data-verdicts") or 0)
    page.fill("#code-input", code)
    page.press("#code-input", "Enter")
    # Selectors, not wait_for_function: the page's CSP forbids the eval that polling needs.
    page.wait_for_selector(f"#verdict[data-verdicts='{done + 1}']")
    return verdict.get_attribute("data-reason") or "", verdict.get_attribute("data-level") or ""


def conformance_table(page: Page, url: str) -> list[tuple[str, tuple[str, str], tuple[str, str]]]:
    """Every vector through the page at its clock and gate policy: (name, (Python reason,
    level shown), (page data-reason, data-level))."""
    table = []
    admit: list[str] | None = None
    for path in sorted(VECTORS.glob("*.json")):
        case = vector(path.stem)
        page.clock.set_fixed_time(moment(case["validation_clock"]))
        if case["admit"] != admit:
            admit = case["admit"]
            open_page(page, url, admit)
        table.append((path.stem, python_verdict(case), enter(page, case["code"])))
    return table


def qr_frame(code: str, size: tuple[int, int] = (640, 480)) -> Image.Image:
    """A camera frame: the code's QR centred on white."""
    symbol = Image.open(io.BytesIO(render_qr(code, "png", scale=4))).convert("L")
    frame = Image.new("L", size, 255)
    frame.paste(symbol, ((size[0] - symbol.width) // 2, (size[1] - symbol.height) // 2))
    return frame


def write_y4m(path: Path, frames: list[Image.Image], repeat: int = 1, fps: int = 10) -> None:
    """A Y4M (4:2:0) video of `frames`, each shown `repeat` times, for Chromium's
    --use-file-for-fake-video-capture."""
    width, height = frames[0].size
    with path.open("wb") as video:
        video.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for frame in frames:
            y, cb, cr = frame.convert("YCbCr").split()
            half = (width // 2, height // 2)
            data = b"FRAME\n" + y.tobytes() + cb.resize(half).tobytes() + cr.resize(half).tobytes()
            for _ in range(repeat):
                video.write(data)
