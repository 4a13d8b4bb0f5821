"""Event decoding: the chosen decoder (pydantic-core `validate_json` on the strict models,
then the duplicate-key check) against plain `json.loads` (parse only, no validation) and
`orjson.loads`, in one run. Lines with a backslash (an escaped character) take the
duplicate-key check's slow path, a second parse pair by pair: measured on its own."""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable

import orjson

from scoring.events import decode_event


def sample_lines(count: int) -> list[bytes]:
    """A realistic mix: mostly pings, some visits and test results."""
    lines = []
    for i in range(count):
        person = f"p{i % 5000:06d}"
        if i % 50 == 0:
            obj = {"type": "test_result", "event_id": f"t{i}", "ts": "2022-04-01T09:00:00Z", "person": person,
                   "sampled_at": "2022-04-01T07:00:00Z", "test": "pcr", "result": "negative"}
        elif i % 97 == 0:
            obj = {"type": "visit", "event_id": f"v{i}", "ts": "2022-04-01T09:00:00Z", "person": person,
                   "facility": "hospital-3", "kind": "fever_clinic"}
        else:
            obj = {"type": "ping", "event_id": f"e{i}", "ts": "2022-04-01T08:15:00Z", "person": person,
                   "lat": 31.2 + (i % 100) * 1e-4, "lon": 121.4, "accuracy_m": 15.0, "source": "gps"}
        lines.append(json.dumps(obj).encode())
    return lines


def rate(fn: Callable[[bytes], object], lines: list[bytes]) -> float:
    """Events per second of `fn` over `lines` (best of three passes)."""
    best = float("inf")
    for _ in range(3):
        start = time.perf_counter()
        for line in lines:
            fn(line)
        best = min(best, time.perf_counter() - start)
    return len(lines) / best


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="20k lines instead of 200k")
    args = parser.parse_args(argv)
    lines = sample_lines(20_000 if args.quick else 200_000)
    baseline = rate(json.loads, lines)
    fast_parse = rate(orjson.loads, lines)
    chosen = rate(decode_event, lines)
    escaped = rate(decode_event, [line.replace(b'"e', b'"\\u0065', 1) for line in lines])
    print(f"lines: {len(lines)}")
    print(f"json.loads (parse only, baseline): {baseline:,.0f} events/s")
    print(f"orjson.loads (parse only):         {fast_parse:,.0f} events/s")
    print(f"decode_event (parse + validate):   {chosen:,.0f} events/s")
    print(f"decode_event, a key escaped:       {escaped:,.0f} events/s (duplicate-key check parses twice)")
    print(f"ratio decode_event / json.loads:   {chosen / baseline:.2f}")


if __name__ == "__main__":
    main()
