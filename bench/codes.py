"""Health codes: issue and verify against the raw signature operations of the same
library on the same key and message size, and QR rendering (segno, chosen) against the
`qrcode` package, and QR reading from PNG, all in one run.

Goals from the issue: verifications/s at least 0.8 of raw Ed25519 verifications/s, and
codes issued/s at least 0.8 of raw signatures/s. Each rate is the best of many short
interleaved batches: on a shared machine the best batch is the one a neighbour did not
disturb, and both sides of a ratio get the same chances.
"""

from __future__ import annotations

import argparse
import io
import time
from collections.abc import Callable

import qrcode
import qrcode.image.svg
import zxingcpp
from PIL import Image

from codes import Algorithm, Level, SigningKey, TrustList, generate_signing_key, issue, read_qr, render_qr, verify
from codes.cose import decode_sign1
from codes.envelope import inflate, strip_prefix
from codes.b45 import b45decode

ISSUED_AT = 1_649_664_000  # 2022-04-11T08:00:00Z
EXPIRES_AT = ISSUED_AT + 12 * 3600


def best_rates(operations: dict[str, Callable[[], object]], count: int, rounds: int) -> dict[str, float]:
    """Operations per second of each callable, best of `rounds` interleaved batches of `count`."""
    best = dict.fromkeys(operations, float("inf"))
    for _ in range(rounds):
        for name, operation in operations.items():
            start = time.perf_counter()
            for _ in range(count):
                operation()
            best[name] = min(best[name], time.perf_counter() - start)
    return {name: count / seconds for name, seconds in best.items()}


def _issuer(key: SigningKey) -> Callable[[], str]:
    def issue_one() -> str:
        return issue(key, person="p-000042", level=Level.GREEN, rule_set="default@1", issued_at=ISSUED_AT, expires_at=EXPIRES_AT)

    return issue_one


def crypto_section(alg: Algorithm, count: int, rounds: int) -> None:
    key = generate_signing_key(alg, ISSUED_AT - 86400, ISSUED_AT + 90 * 86400)
    trust = TrustList.of([key.info])
    issue_one = _issuer(key)
    code = issue_one()
    message = decode_sign1(inflate(b45decode(strip_prefix(code))))
    to_be_signed, signature = message.to_be_signed(), message.signature
    assert verify(code, trust, at=ISSUED_AT + 60).valid
    rates = best_rates(
        {
            "raw sign": lambda: key.sign(to_be_signed),
            "issue": issue_one,
            "raw verify": lambda: key.info.verify(signature, to_be_signed),
            "verify": lambda: verify(code, trust, at=ISSUED_AT + 60),
        },
        count,
        rounds,
    )
    print(f"{alg} ({len(code)}-character code, {len(to_be_signed)}-byte Sig_structure):")
    print(f"  raw {alg} signatures (baseline): {rates['raw sign']:>10,.0f} /s")
    print(f"  codes issued:                    {rates['issue']:>10,.0f} /s   ratio {rates['issue'] / rates['raw sign']:.2f}")
    print(f"  raw {alg} verifications (baseline): {rates['raw verify']:>7,.0f} /s")
    print(f"  codes verified:                     {rates['verify']:>7,.0f} /s   ratio {rates['verify'] / rates['raw verify']:.2f}")


def _qrcode_package(code: str, svg: bool) -> bytes:
    factory = qrcode.image.svg.SvgPathImage if svg else None
    symbol = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_Q, box_size=4, border=4, image_factory=factory)
    symbol.add_data(code)
    symbol.make(fit=True)
    buffer = io.BytesIO()
    symbol.make_image().save(buffer)
    return buffer.getvalue()


def qr_section(count: int, rounds: int) -> None:
    key = generate_signing_key(Algorithm.EDDSA, ISSUED_AT - 86400, ISSUED_AT + 90 * 86400)
    code = _issuer(key)()
    png = render_qr(code, "png")
    assert read_qr(Image.open(io.BytesIO(png))) == [code]
    rates = best_rates(
        {
            "png": lambda: render_qr(code, "png"),
            "png baseline": lambda: _qrcode_package(code, svg=False),
            "svg": lambda: render_qr(code, "svg"),
            "svg baseline": lambda: _qrcode_package(code, svg=True),
            "read": lambda: read_qr(Image.open(io.BytesIO(png))),
            "read baseline": lambda: zxingcpp.read_barcodes(Image.open(io.BytesIO(png))),
        },
        count,
        rounds,
    )
    print("QR (alphanumeric, level Q, 4 px/module):")
    print(f"  PNG rendered, qrcode package (baseline): {rates['png baseline']:>7,.0f} /s")
    print(f"  PNG rendered, render_qr (segno):         {rates['png']:>7,.0f} /s   ratio {rates['png'] / rates['png baseline']:.2f}")
    print(f"  SVG rendered, qrcode package (baseline): {rates['svg baseline']:>7,.0f} /s")
    print(f"  SVG rendered, render_qr (segno):         {rates['svg']:>7,.0f} /s   ratio {rates['svg'] / rates['svg baseline']:.2f}")
    print(f"  PNG read, plain zxing-cpp, all formats (baseline): {rates['read baseline']:>6,.0f} /s")
    print(f"  PNG read, read_qr:                                 {rates['read']:>6,.0f} /s   ratio {rates['read'] / rates['read baseline']:.2f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="smaller batches and fewer rounds")
    args = parser.parse_args(argv)
    count, rounds = (200, 10) if args.quick else (300, 60)
    for alg in Algorithm:
        crypto_section(alg, count, rounds)
    qr_section(10, 3 if args.quick else 10)


if __name__ == "__main__":
    main()
