"""QR images: alphanumeric mode at level Q, readable back from imperfect photos."""

from __future__ import annotations

import io
import xml.etree.ElementTree as ElementTree
from typing import Callable

import numpy as np
import pytest
import segno
import zxingcpp
from PIL import Image, ImageFilter

from codes import QrError, read_qr, render_qr


@pytest.fixture(scope="module")
def code(ed_issue: Callable[..., str]) -> str:
    return ed_issue()


@pytest.fixture(scope="module")
def photo(code: str) -> Image.Image:
    return Image.open(io.BytesIO(render_qr(code, "png", scale=4))).convert("L")


def test_the_png_reads_back_as_the_code_at_level_q_in_the_smallest_alphanumeric_version(code: str) -> None:
    # Only QR codes are looked for: zxing also finds, in about 1 of 150 random codes, a spurious
    # Codabar in the modules' pattern (the checkpoint's `read_qr` asks for QR codes only, too).
    (barcode,) = zxingcpp.read_barcodes(Image.open(io.BytesIO(render_qr(code, "png"))),
                                        formats=zxingcpp.BarcodeFormat.QRCode)
    assert barcode.text == code
    assert barcode.extra["ECLevel"] == "Q"
    alphanumeric = segno.make_qr(code, error="q", mode="alphanumeric", boost_error=False).version
    byte_mode = segno.make_qr(code, error="q", mode="byte", boost_error=False).version
    assert int(barcode.extra["Version"]) == alphanumeric < byte_mode


def test_the_svg_is_an_svg_document_of_the_requested_size(code: str) -> None:
    root = ElementTree.fromstring(render_qr(code, "svg", scale=3, border=4))
    modules = segno.make_qr(code, error="q", mode="alphanumeric", boost_error=False).symbol_size(scale=3, border=4)
    assert root.tag.endswith("svg")
    assert (int(root.get("width", "0")), int(root.get("height", "0"))) == modules


def test_scale_and_border_set_the_png_size(code: str) -> None:
    small = Image.open(io.BytesIO(render_qr(code, "png", scale=2, border=4)))
    large = Image.open(io.BytesIO(render_qr(code, "png", scale=6, border=4)))
    assert large.width == 3 * small.width


@pytest.mark.parametrize(
    "damage",
    [
        lambda image: image.rotate(90, expand=True),
        lambda image: image.rotate(33, expand=True, fillcolor=255, resample=Image.Resampling.BILINEAR),
        lambda image: image.resize((image.width * 2 // 5, image.height * 2 // 5), Image.Resampling.BILINEAR),
        lambda image: image.resize((image.width * 3 // 10, image.height * 3 // 10), Image.Resampling.BILINEAR),
        lambda image: _noisy(image.resize((image.width * 2, image.height * 2)), sigma=50),
        lambda image: _noisy(image.resize((image.width * 2, image.height * 2)), sigma=40).filter(ImageFilter.GaussianBlur(1.5)),
        lambda image: _jpeg(image.rotate(180), quality=15),
        lambda image: _on_a_desk(image),
    ],
    ids=["rotated-90", "rotated-33", "small", "tiny", "noisy", "noisy-and-blurred", "upside-down-jpeg-q15", "on-a-desk"],
)
def test_an_imperfect_photo_still_reads_as_the_code(damage: Callable[[Image.Image], Image.Image], photo: Image.Image, code: str) -> None:
    assert read_qr(damage(photo)) == [code]


def test_an_image_without_a_qr_code_reads_as_nothing() -> None:
    assert read_qr(Image.new("RGB", (200, 200), "white")) == []


def test_only_png_and_svg_are_rendered(code: str) -> None:
    with pytest.raises(QrError):
        render_qr(code, "gif")  # type: ignore[arg-type]


def test_text_outside_the_alphanumeric_alphabet_is_not_rendered() -> None:
    with pytest.raises(QrError):
        render_qr("hcq1:lower case")


def _noisy(image: Image.Image, sigma: float) -> Image.Image:
    pixels = np.asarray(image, dtype=np.float64)
    noise = np.random.default_rng(7).normal(0.0, sigma, pixels.shape)
    return Image.fromarray(np.clip(pixels + noise, 0, 255).astype(np.uint8))


def _jpeg(image: Image.Image, quality: int) -> Image.Image:
    buffer = io.BytesIO()
    image.save(buffer, format="JPEG", quality=quality)
    return Image.open(io.BytesIO(buffer.getvalue()))


def _on_a_desk(image: Image.Image) -> Image.Image:
    """The code small, off-centre and tilted on a grey, unevenly lit background, in colour."""
    desk = Image.linear_gradient("L").resize((640, 480)).point(lambda value: 90 + value // 3).convert("RGB")
    tilted = image.resize((image.width * 3 // 4, image.height * 3 // 4)).rotate(-12, expand=True, fillcolor=255)
    desk.paste(tilted.convert("RGB"), (300, 120))
    return desk
