"""The end-to-end demo on its own embedded broker: faults dead-lettered, stream agrees with file, codes verify."""

from __future__ import annotations

from pathlib import Path

import orjson

from healthcode.broker import metadata_answers
from healthcode.demo import run_demo

RULES = Path(__file__).resolve().parents[2] / "rules"


def test_the_demo_dead_letters_every_malformed_event_and_publishes_the_replay_timeline(tmp_path: Path) -> None:
    lines: list[str] = []
    summary = run_demo(tmp_path / "demo", RULES / "default.yaml", RULES / "points.yaml",
                       residents=160, days=3, seed=5, say=lines.append)

    faults = [orjson.loads(line) for line in (tmp_path / "demo" / "city" / "faults.jsonl").read_bytes().splitlines()]
    content_faults = [f for f in faults if f["kind"] in ("malformed_json", "wrong_type", "unknown_field")]
    assert summary.published > 0
    assert sum(summary.dead_lettered.values()) == len(content_faults)
    assert summary.replay_agrees
    assert "default@" in summary.rule_change and "points@" in summary.rule_change
    assert "(never changed level) fetched a green code" in summary.resident_verdict
    assert summary.resident_verdict.endswith(": OK at a green-only gate")
    assert summary.qr_verdict.split(": ")[1].startswith("OK")
    address = next(line for line in lines if line.startswith("embedded broker ready at ")).rsplit(" ", 1)[1]
    assert not metadata_answers(address, timeout=0.5)
