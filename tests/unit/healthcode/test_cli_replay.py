"""`healthcode replay` as a user runs it: a file of events in, a level timeline out, problems on stderr."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from scoring.events import Ping, encode_event
from scoring.synthetic import DAY, HOUR, result
from scoring.timeutil import format_rfc3339, from_epoch

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = str(ROOT / "rules" / "default.yaml")
HEALTHCODE = [sys.executable, "-m", "healthcode.cli.main"]
T0 = 1_648_800_000  # 2022-04-01T08:00:00Z
CONFIRMED = T0 + DAY + 6 * HOUR
HERE = (30.5900, 114.3000)
FAR = (30.6500, 114.4000)


def _ping(person: str, at: int, place: tuple[float, float]) -> Ping:
    return Ping(event_id=f"{person}-{at}", ts=from_epoch(at), person=person, lat=place[0], lon=place[1], source="gps")


@pytest.fixture(scope="module")
def outbreak() -> list:
    """Case `c` and contact `k` side by side for 30 minutes, `f` far away; `c` tests positive a day later."""
    events = []
    for minute in range(0, 31, 5):
        at = T0 + minute * 60
        events += [_ping("c", at, HERE), _ping("k", at, HERE), _ping("f", at, FAR)]
    return events + [result("c", T0 + DAY, CONFIRMED, positive=True)]


@pytest.fixture(scope="module")
def events_jsonl(outbreak, tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    path.write_bytes(b"".join(encode_event(event) + b"\n" for event in outbreak))
    return path


def healthcode(*args: str, stdin: bytes | None = None, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run the real command line, as a user's shell would."""
    return subprocess.run([*HEALTHCODE, *args], input=stdin, capture_output=True, timeout=120,
                          env={"PATH": "/usr/bin:/bin", "COLUMNS": "200", **(env or {})})


def _replay(
    events: str | Path, out: Path, *extra: str, stdin: bytes | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    return healthcode("replay", str(events), "--rules", DEFAULT, "--out", str(out), *extra, stdin=stdin, env=env)


def _timeline(path: Path) -> list[dict]:
    return [orjson.loads(line) for line in path.read_bytes().splitlines()]


@pytest.fixture(scope="module")
def reference(events_jsonl, tmp_path_factory) -> tuple[subprocess.CompletedProcess, list[dict]]:
    """The replay of the clean JSONL file: the run and its timeline."""
    out = tmp_path_factory.mktemp("reference") / "timeline.jsonl"
    run = _replay(events_jsonl, out, "--summary")
    return run, _timeline(out)


def test_replay_exits_0_and_writes_one_line_per_level_change(reference) -> None:
    run, timeline = reference
    assert run.returncode == 0, run.stderr.decode()
    assert [(line["person"], line["at"], line["level"]) for line in timeline] == [
        ("c", format_rfc3339(CONFIRMED), "red"),
        ("k", format_rfc3339(CONFIRMED), "red"),
    ]
    contact = timeline[1]
    assert set(contact) == {"person", "at", "level", "reasons", "rule_set"}
    assert contact["rule_set"] == "default@1.0.0"
    assert "close_contact" in {reason["rule"] for reason in contact["reasons"]}
    assert all(set(reason) == {"rule", "since", "until"} for reason in contact["reasons"])


def test_replay_reports_what_it_read_on_stderr(reference) -> None:
    stderr = reference[0].stderr.decode()
    assert ("22 events (21 pings), 0 malformed skipped, 0 duplicates applied once; 2 timeline lines "
            "(2 level changes, 0 of reasons only)") in stderr


def test_summary_prints_persons_per_level_and_the_exposures_found(reference) -> None:
    stdout = reference[0].stdout.decode()
    counts = dict(re.findall(r"\b(green|yellow|red)\b\W+(\d+)", stdout))
    assert counts == {"green": "1", "yellow": "0", "red": "2"}
    # `k` was both a close contact (same ~100 m cell) and a companion (same ~800 m cell) of `c`.
    assert "exposures found: 2" in stdout
    assert "level changes: 2" in stdout
    assert "changes of reasons only (the level staying): 0" in stdout


def test_without_summary_nothing_is_printed_on_stdout(events_jsonl, tmp_path) -> None:
    run = _replay(events_jsonl, tmp_path / "timeline.jsonl")
    assert run.returncode == 0
    assert run.stdout == b""


def test_malformed_lines_are_reported_with_their_numbers_and_skipped(events_jsonl, reference, tmp_path) -> None:
    lines = events_jsonl.read_bytes().splitlines()
    lines.insert(1, b"not json at all")
    lines.insert(3, b'{"type":"ping","event_id":"bad","person":"k","lat":30.59,"lon":114.3,"source":"gps"}')
    lines.append(lines[-1])
    damaged = tmp_path / "damaged.jsonl"
    damaged.write_bytes(b"\n".join(lines) + b"\n")
    run = _replay(damaged, tmp_path / "timeline.jsonl")
    stderr = run.stderr.decode()
    assert run.returncode == 0, stderr
    assert re.search(r"^line 2: skipped: not valid JSON", stderr, re.MULTILINE)
    assert re.search(r"^line 4: skipped: ping\.ts: Field required$", stderr, re.MULTILINE)
    assert "2 malformed skipped, 1 duplicates applied once" in stderr
    assert _timeline(tmp_path / "timeline.jsonl") == reference[1]


@pytest.mark.parametrize("until", ["yesterday", "2022-04-10T00:00:00", "2022-13-01T00:00:00Z"])
def test_an_until_that_is_not_an_rfc3339_time_with_offset_is_a_usage_error(events_jsonl, tmp_path, until) -> None:
    run = _replay(events_jsonl, tmp_path / "timeline.jsonl", "--until", until)
    stderr = run.stderr.decode()
    assert run.returncode == 2
    assert "--until" in stderr
    assert "Traceback" not in stderr
    assert not (tmp_path / "timeline.jsonl").exists()


def test_until_before_any_change_writes_an_empty_timeline(events_jsonl, tmp_path) -> None:
    run = _replay(events_jsonl, tmp_path / "timeline.jsonl", "--until", format_rfc3339(CONFIRMED - 1))
    assert run.returncode == 0, run.stderr.decode()
    assert (tmp_path / "timeline.jsonl").read_bytes() == b""


@pytest.mark.parametrize(
    ("name", "problem"),
    [("absent.jsonl", "No such file"), ("absent.parquet", "No such file"), (".", "Is a directory")],
)
def test_unreadable_events_are_exit_2_with_a_clear_message_and_no_traceback(tmp_path, name, problem) -> None:
    events = tmp_path / name
    run = _replay(events, tmp_path / "timeline.jsonl")
    stderr = " ".join(run.stderr.decode().split())
    assert run.returncode == 2
    assert f"cannot read {events}:" in stderr
    assert problem in stderr
    assert "Traceback" not in stderr


def test_a_missing_rule_set_is_exit_2_before_any_event_is_read(events_jsonl, tmp_path) -> None:
    run = healthcode("replay", str(events_jsonl), "--rules", str(tmp_path / "absent.yaml"), "--out", str(tmp_path / "t.jsonl"))
    stderr = " ".join(run.stderr.decode().split())
    assert run.returncode == 2
    assert f"cannot read {tmp_path / 'absent.yaml'}" in stderr
    assert "Traceback" not in stderr


def test_an_empty_events_file_gives_an_empty_timeline_and_a_zero_summary(tmp_path) -> None:
    empty = tmp_path / "empty.jsonl"
    empty.write_bytes(b"")
    run = _replay(empty, tmp_path / "timeline.jsonl", "--summary")
    assert run.returncode == 0, run.stderr.decode()
    assert (tmp_path / "timeline.jsonl").read_bytes() == b""
    assert dict(re.findall(r"\b(green|yellow|red)\b\W+(\d+)", run.stdout.decode())) == {"green": "0", "yellow": "0", "red": "0"}
    assert "exposures found: 0" in run.stdout.decode()


def test_a_dash_reads_the_events_from_stdin(events_jsonl, reference, tmp_path) -> None:
    run = _replay("-", tmp_path / "timeline.jsonl", stdin=events_jsonl.read_bytes())
    assert run.returncode == 0, run.stderr.decode()
    assert _timeline(tmp_path / "timeline.jsonl") == reference[1]


def _write_parquet(rows: list[dict], path: Path) -> Path:
    columns = sorted({key for row in rows for key in row})
    pq.write_table(pa.table({name: [row.get(name) for row in rows] for name in columns}), path)
    return path


def test_a_parquet_file_with_the_contract_columns_gives_the_same_timeline(outbreak, reference, tmp_path) -> None:
    events = _write_parquet([event.model_dump() for event in outbreak], tmp_path / "events.parquet")
    run = _replay(events, tmp_path / "timeline.jsonl")
    assert run.returncode == 0, run.stderr.decode()
    assert _timeline(tmp_path / "timeline.jsonl") == reference[1]


def test_a_parquet_row_the_contract_rejects_is_reported_with_its_row_number(outbreak, reference, tmp_path) -> None:
    rows = [event.model_dump() for event in outbreak]
    rows.insert(2, rows[0] | {"event_id": "off-the-map", "lat": 95.0})
    run = _replay(_write_parquet(rows, tmp_path / "events.parquet"), tmp_path / "timeline.jsonl")
    assert run.returncode == 0, run.stderr.decode()
    assert re.search(r"^line 3: skipped: ping\.lat: Input should be less than or equal to 90$", run.stderr.decode(), re.MULTILINE)
    assert _timeline(tmp_path / "timeline.jsonl") == reference[1]


def test_replay_help_teaches_with_an_example() -> None:
    run = healthcode("replay", "--help")
    assert run.returncode == 0
    assert "Example: `healthcode replay" in " ".join(run.stdout.decode().split())


def test_a_malformed_line_is_reported_verbatim_even_when_it_looks_like_markup(tmp_path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_bytes(
        b'{"type":"ping","event_id":"e1","ts":"2022-04-01T08:00:00Z","person":"a","lat":30.5,"lon":114.3,"source":"gps","[/x]":1}\n'
        b'{"type":"ping","event_id":"e2","ts":"2022-04-01T08:00:00Z","person":"a","lat":30.5,"lon":114.3,"source":"gps","[bold]y":1}\n'
    )
    run = subprocess.run([*HEALTHCODE, "replay", str(events), "--rules", DEFAULT,
                          "--out", str(tmp_path / "t.jsonl")], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "line 1: skipped: ping.[/x]: unknown field" in run.stderr
    assert "line 2: skipped: ping.[bold]y: unknown field" in run.stderr


def test_an_out_path_in_a_missing_directory_is_exit_2_without_traceback(tmp_path) -> None:
    events = tmp_path / "empty.jsonl"
    events.write_bytes(b"")
    out = tmp_path / "missing" / "timeline.jsonl"
    run = subprocess.run([*HEALTHCODE, "replay", str(events), "--rules", DEFAULT,
                          "--out", str(out)], capture_output=True, text=True)
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr


def test_with_now_an_event_further_ahead_than_intake_allows_is_skipped_as_the_stream_would(
    events_jsonl, reference, tmp_path
) -> None:
    ahead = _ping("k", CONFIRMED + 3 * DAY, HERE)
    damaged = tmp_path / "ahead.jsonl"
    damaged.write_bytes(events_jsonl.read_bytes() + encode_event(ahead) + b"\n")
    run = _replay(damaged, tmp_path / "timeline.jsonl", "--now", format_rfc3339(CONFIRMED))
    stderr = run.stderr.decode()
    assert run.returncode == 0, stderr
    assert "1 malformed skipped" in stderr
    assert _timeline(tmp_path / "timeline.jsonl") == reference[1]
    # Without an intake clock only the fixed ceiling applies: the same event is scored.
    run = _replay(damaged, tmp_path / "kept.jsonl")
    assert "0 malformed skipped" in run.stderr.decode()


def test_the_configured_earliest_event_time_applies_to_replay_as_to_intake(events_jsonl, tmp_path) -> None:
    run = _replay(events_jsonl, tmp_path / "timeline.jsonl",
                  env={"HEALTHCODE_EARLIEST_EVENT_TIME": format_rfc3339(T0 + DAY)})
    stderr = run.stderr.decode()
    assert run.returncode == 0, stderr
    assert "21 malformed skipped" in stderr  # every ping is earlier; only the test result is left
    assert _timeline(tmp_path / "timeline.jsonl")[0]["person"] == "c"


def test_snapping_ahead_in_a_helper_writes_the_same_timeline(events_jsonl, reference, tmp_path) -> None:
    run = _replay(events_jsonl, tmp_path / "ahead.jsonl", "--snap-ahead")
    assert run.returncode == 0, run.stderr.decode()
    assert _timeline(tmp_path / "ahead.jsonl") == reference[1]
