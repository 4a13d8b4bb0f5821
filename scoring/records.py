"""A person's facts as fixed-size binary records, so that many persons pack into numpy columns fast.

`PersonState` keeps its facts twice: in dicts keyed for idempotence, and as these
records (`PersonState.fact_records`, computed when first needed). Rescoring a million persons joins their record
bytes and reads them with one `numpy.frombuffer`, instead of walking Python objects.

Record layout (little endian, 36 bytes), by `what`:

- 0 test: t1 sampled_at, t2 known_at, code test (`TEST_CODE`), flag positive;
- 1 visit: t1 = t2 visit time, code visit kind (`VISIT_CODE`);
- 2 exposure: t1 effective_from (when it became known), t2 last_at, flag retracted, minutes, kind `kind_hash`, area
  designation level (`AREA_LEVEL_CODE`), code the number of day records that follow;
- 3 day of the preceding exposure: t1 day offset, minutes.
"""

from __future__ import annotations

import hashlib
import struct
from functools import lru_cache
from typing import Iterable

import numpy as np

from scoring.exposure import Exposure

TEST = 0
VISIT = 1
EXPOSURE = 2
DAY = 3
TEST_CODE = {"pcr": 0, "antigen": 1}
VISIT_CODE = {"fever_clinic": 0, "diagnosis": 1, "recovery": 2}
AREA_LEVEL_CODE = {None: -1, "medium": 0, "high": 1}

RECORD = struct.Struct("<BqqBBdqb")
FACT_DTYPE = np.dtype(
    [
        ("what", "u1"),
        ("t1", "<i8"),
        ("t2", "<i8"),
        ("code", "u1"),
        ("flag", "u1"),
        ("minutes", "<f8"),
        ("kind", "<i8"),
        ("area", "i1"),
    ]
)
assert FACT_DTYPE.itemsize == RECORD.size


@lru_cache(maxsize=1024)
def kind_hash(kind: str) -> int:
    """A stable signed 64-bit code of an exposure kind name."""
    return int.from_bytes(hashlib.blake2b(kind.encode(), digest_size=8).digest(), "little", signed=True)


def encode_facts(tests: Iterable, visits: Iterable, exposures: Iterable[Exposure]) -> bytes:
    """The records of a person's tests (`ResultFact`), visits (`VisitFact`) and exposures."""
    pack = RECORD.pack
    parts = [pack(TEST, t.sampled_at, t.known_at, TEST_CODE[t.test], t.positive, 0.0, 0, -1) for t in tests]
    parts += [pack(VISIT, v.at, v.at, VISIT_CODE[v.kind], 0, 0.0, 0, -1) for v in visits]
    for item in exposures:
        parts.append(
            pack(
                EXPOSURE,
                item.effective_from,
                item.last_at,
                len(item.minutes_by_day),
                item.retracted,
                item.minutes,
                kind_hash(item.kind),
                AREA_LEVEL_CODE[item.level],
            )
        )
        parts += [pack(DAY, day, 0, 0, 0, minutes, 0, -1) for day, minutes in item.minutes_by_day]
    return b"".join(parts)
