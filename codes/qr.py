"""QR images of codes: render (segno) and read back (zxing-cpp).

Codes are rendered in alphanumeric mode, which the Base45 alphabet and the `HCQ1:`
prefix were chosen for, at error correction level Q (25 % of the symbol may be lost),
as EU DCC QR codes are.
"""

from __future__ import annotations

import io
from typing import Literal

import segno
import zxingcpp
from PIL import Image

QrFormat = Literal["png", "svg"]
# zxing-cpp finds codes at about two pixels per module but misreads blurred ones
# below that; enlarging a small photo (bicubic) gives it back clean edges. Larger
# photos are left alone: their trouble is not resolution and enlarging them is slow.
_UPSCALES = (2, 3)
_UPSCALE_BELOW_PIXELS = 1200


class QrError(ValueError):
    """Text that cannot be put into a QR code of our kind."""


def render_qr(code: str, fmt: QrFormat = "png", *, scale: int = 4, border: int = 4) -> bytes:
    """The QR image of `code` as PNG or SVG bytes; `scale` is pixels per module and
    `border` the quiet zone in modules (4 is the minimum the standard asks for)."""
    if fmt not in ("png", "svg"):
        raise QrError(f"unknown QR image format {fmt!r}: use png or svg")
    try:
        symbol = segno.make_qr(code, error="q", mode="alphanumeric", boost_error=False)
    except (segno.DataOverflowError, ValueError) as error:
        raise QrError(f"cannot encode as an alphanumeric QR code: {error}") from None
    buffer = io.BytesIO()
    if fmt == "png":
        symbol.save(buffer, kind="png", scale=scale, border=border)
    else:
        symbol.save(buffer, kind="svg", scale=scale, border=border, xmldecl=False, title="health code")
    return buffer.getvalue()


def read_qr(image: Image.Image) -> list[str]:
    """The texts of every QR code found in `image` (a photo or a rendered image, in any
    orientation, also small, noisy or blurred), in the order zxing-cpp reports them."""
    gray = image.convert("L")
    texts = _read(gray)
    if texts or max(gray.size) >= _UPSCALE_BELOW_PIXELS:
        return texts
    for factor in _UPSCALES:
        texts = _read(gray.resize((gray.width * factor, gray.height * factor), Image.Resampling.BICUBIC))
        if texts:
            return texts
    return []


def _read(gray: Image.Image) -> list[str]:
    barcodes = zxingcpp.read_barcodes(gray, formats=zxingcpp.BarcodeFormat.QRCode)
    return [barcode.text for barcode in barcodes]
