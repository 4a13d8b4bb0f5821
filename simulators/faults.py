"""Fault injection: the stream a real gateway delivers, not the one we wish for.

Ordering faults change when an event arrives (`late`: hours after it happened;
`out_of_order`: minutes, behind newer events but within a typical allowed lateness;
`duplicate`: the same event, same id, resent shortly after). Content faults are
chosen on the arrival-ordered stream and applied when lines are written
(`malformed_json`, `wrong_type`, `unknown_field`). Every faulty row carries its
fault code, so the writer can list it in the faults file.
"""

from __future__ import annotations

import numpy as np

from simulators.config import FAULT_KINDS, ORDER_FAULTS, FaultConfig
from simulators.frames import NO_FAULT, Frame, size, take

FAULT_CODES: dict[str, int] = {kind: code for code, kind in enumerate(FAULT_KINDS, start=1)}
_RESEND_SECONDS = (1, 300)


def fault_name(code: int) -> str:
    """The kind of fault a code stands for."""
    return FAULT_KINDS[code - 1]


def _per_kind(config: FaultConfig) -> float:
    return config.share / len(config.kinds)


def disturb(frame: Frame, config: FaultConfig, horizon: int, rng: np.random.Generator) -> Frame:
    """Apply ordering faults: delay some events, and append resent duplicates.

    An event is only delayed if it still arrives before `horizon` (the end of the
    run), where the stream has moved on and the delay can be seen."""
    kinds = [kind for kind in config.kinds if kind in ORDER_FAULTS]
    if config.share == 0 or not kinds or size(frame) == 0:
        return frame
    per_kind = _per_kind(config)
    draw = rng.random(size(frame))
    duplicates = None
    for position, kind in enumerate(kinds):
        rows = np.flatnonzero((draw >= position * per_kind) & (draw < (position + 1) * per_kind))
        if kind in ("late", "out_of_order"):
            hours = config.late_hours if kind == "late" else tuple(m / 60 for m in config.out_of_order_minutes)
            delay = (rng.uniform(*hours, rows.size) * 3_600).astype(np.int64)
            fits = frame["arrival"][rows] + delay < horizon
            rows = rows[fits]
            frame["arrival"][rows] += delay[fits]
        else:
            duplicates = take(frame, rows)
            duplicates["arrival"] = duplicates["arrival"] + rng.integers(*_RESEND_SECONDS, rows.size)
            duplicates["fault"] = np.full(rows.size, FAULT_CODES[kind], dtype=np.int8)
            continue
        frame["fault"][rows] = FAULT_CODES[kind]
    if duplicates is None:
        return frame
    return {name: np.concatenate([frame[name], duplicates[name]]) for name in frame}


def mark_content_faults(fault: np.ndarray, config: FaultConfig, rng: np.random.Generator) -> None:
    """Choose rows (not already faulty) whose text the writer will corrupt; marks them in place."""
    kinds = [kind for kind in config.kinds if kind not in ORDER_FAULTS]
    if config.share == 0 or not kinds or fault.size == 0:
        return
    per_kind = _per_kind(config)
    draw = rng.random(fault.size)
    clean = fault == NO_FAULT
    for position, kind in enumerate(kinds):
        chosen = clean & (draw >= position * per_kind) & (draw < (position + 1) * per_kind)
        fault[chosen] = FAULT_CODES[kind]
