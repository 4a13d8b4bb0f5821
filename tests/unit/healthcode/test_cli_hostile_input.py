"""The CLI under hostile input: a precise one-line error and exit 2 (or the right answer), never a traceback.

Each test names the input that once printed a traceback, hung or answered wrongly.
Commands that need no broker run here; those that do are in
tests/integration/healthcode/test_cli_hostile_broker.py.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from healthcode.broker import free_port
from healthcode.cli import main as cli_main
from healthcode.cli.main import app
from healthcode.config import get_settings, setting_warnings
from healthcode.errors import EnvironmentProblem

ROOT = Path(__file__).resolve().parents[3]
DEFAULT = str(ROOT / "rules" / "default.yaml")
HEALTHCODE = [sys.executable, "-m", "healthcode.cli.main"]


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch):
    """Settings from this test's environment only: no config file, no cached settings."""
    for name in list(os.environ):
        if name.startswith("HEALTHCODE_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("HEALTHCODE_CONFIG", "")
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def invoke(*args: str, stdin: str | None = None, **env: str):
    get_settings.cache_clear()
    return CliRunner().invoke(app, list(args), input=stdin, env={"COLUMNS": "200", **env})


def healthcode(*args: str, **env: str) -> subprocess.CompletedProcess:
    """`healthcode ARGS` as a user runs it, output to a pipe, with only these HEALTHCODE_* settings."""
    clean = {name: value for name, value in os.environ.items() if not name.startswith("HEALTHCODE_")}
    clean.pop("COLUMNS", None)
    return subprocess.run(
        HEALTHCODE + list(args), env={**clean, "HEALTHCODE_CONFIG": "", **env},
        capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL, cwd=ROOT,
    )


def one_line_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), stderr
    return lines[0]


# Rule set files


@pytest.mark.parametrize("command", ["validate", "show", "test", "diff"])
def test_a_rule_set_file_that_is_not_utf8_is_a_usage_error(command: str, tmp_path: Path) -> None:
    bad = tmp_path / "latin1.yaml"
    # A Latin-1 é where UTF-8 is expected.
    bad.write_bytes(Path(DEFAULT).read_bytes().replace(b"Health-code levels", b"Niveaux \xe9tablis"))
    args = [str(bad), DEFAULT] if command == "diff" else [str(bad)]
    outcome = invoke("rules", command, *args)
    assert isinstance(outcome.exception, EnvironmentProblem), outcome.output
    assert f"{bad} is not UTF-8 text" in str(outcome.exception)


def test_the_error_reaches_the_user_as_one_line_and_exit_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_bytes(b"id: x\n\xff\xfe\n")
    run = healthcode("rules", "validate", str(bad))
    assert run.returncode == 2
    assert "is not UTF-8 text" in one_line_error(run.stderr)


# Configuration


def test_config_show_prints_markup_and_control_characters_in_values_literally() -> None:
    outcome = invoke("config", "show", HEALTHCODE_ISSUER="a[/]b[bold]c\x1b[2J")
    assert outcome.exit_code == 0, outcome.output
    assert "issuer = a[/]b[bold]c\\u001b[2J" in outcome.output
    assert "\x1b" not in outcome.output


def test_config_show_redacts_passwords_in_broker_urls_and_stays_valid_json() -> None:
    broker = "kafka://app:s3cret@k1:9092,ops:hunter2@k2:9092"
    text = invoke("config", "show", HEALTHCODE_BROKER=broker).output
    assert "broker = kafka://app:***@k1:9092,ops:***@k2:9092" in text
    as_json = invoke("config", "show", "--json", HEALTHCODE_BROKER=broker, HEALTHCODE_ISSUER="x\x9by").output
    shown = json.loads(as_json)
    assert shown["broker"] == "kafka://app:***@k1:9092,ops:***@k2:9092"
    # Escaped for the terminal, and the JSON still says what the value is.
    assert "\x9b" not in as_json and shown["issuer"] == "x\x9by"
    assert "s3cret" not in text + as_json and "hunter2" not in text + as_json


def test_a_config_file_that_does_not_exist_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEALTHCODE_CONFIG", str(tmp_path / "prod.env"))
    with pytest.raises(EnvironmentProblem, match="prod.env, which is not a file"):
        get_settings()
    run = healthcode("config", "show", HEALTHCODE_CONFIG=str(tmp_path / "prod.env"))
    assert run.returncode == 2
    assert "prod.env, which is not a file" in one_line_error(run.stderr)


def test_a_config_file_that_is_not_utf8_is_an_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "hc.env"
    config.write_bytes(b"HEALTHCODE_ISSUER=caf\xe9\n")
    monkeypatch.setenv("HEALTHCODE_CONFIG", str(config))
    with pytest.raises(EnvironmentProblem, match="is not UTF-8 text"):
        get_settings()


def test_unknown_healthcode_names_are_warned_about_with_the_closest_setting(tmp_path: Path) -> None:
    config = tmp_path / "hc.env"
    config.write_text("HEALTHCODE_BROKR=kafka://k:9092\n")
    warnings = setting_warnings({"HEALTHCODE_PARTITONS": "8", "HEALTHCODE_WHATEVER": "1", "HEALTHCODE_GROUP": "g"})
    assert warnings == [
        "HEALTHCODE_PARTITONS in the environment is not a setting and is ignored (did you mean HEALTHCODE_PARTITIONS?)",
        "HEALTHCODE_WHATEVER in the environment is not a setting and is ignored",
    ]
    run = healthcode("config", "show", HEALTHCODE_CONFIG=str(config), HEALTHCODE_PARTITONS="8")
    assert run.returncode == 0
    assert "warning: HEALTHCODE_PARTITONS in the environment is not a setting" in run.stderr
    assert f"warning: HEALTHCODE_BROKR in {config} is not a setting and is ignored (did you mean HEALTHCODE_BROKER?)" in run.stderr


# Output


def test_output_to_a_pipe_is_not_wrapped_at_80_columns() -> None:
    run = healthcode("rules", "show", DEFAULT)
    assert run.returncode == 0, run.stderr
    description = " ".join(yaml_description().split())
    assert description[:200] in run.stdout


def yaml_description() -> str:
    import yaml

    return yaml.safe_load(Path(DEFAULT).read_text())["description"]


def test_control_characters_from_input_are_shown_escaped_never_sent_to_the_terminal(tmp_path: Path) -> None:
    events = tmp_path / "events.jsonl"
    events.write_text("")
    person = "p1\x1b]0;owned\x07\x9b2J\u202e"
    outcome = invoke("rules", "explain", "--events", str(events), "--person", person, "--at", "2022-04-01T00:00:00Z",
                     "--rules", DEFAULT)
    assert outcome.exit_code == 0, outcome.output
    assert "p1\\u001b]0;owned\\u0007\\u009b2J\\u202e at 2022-04-01T00:00:00Z" in outcome.output
    assert not set(outcome.output) & {"\x1b", "\x07", "\x9b", "\u202e"}


@pytest.mark.parametrize("columns", [None, "40"], ids=["no-COLUMNS", "COLUMNS=40"])
def test_an_unexpected_error_is_one_line_with_the_traceback_in_a_file(
    columns: str | None, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """One line even where the environment names a narrow terminal width (an exported COLUMNS)."""
    if columns is None:
        monkeypatch.delenv("COLUMNS", raising=False)
    else:
        monkeypatch.setenv("COLUMNS", columns)

    def broken() -> None:
        raise RuntimeError("boom [/] \x1b[2J")

    monkeypatch.setattr("healthcode.cli.config.get_settings", broken)
    monkeypatch.setattr(sys, "argv", ["healthcode", "config", "show"])
    with pytest.raises(SystemExit) as stopped:
        cli_main.main()
    assert stopped.value.code == 2
    line = one_line_error(capsys.readouterr().err)
    assert "unexpected RuntimeError: boom [/] \\u001b[2J" in line
    saved = Path(line.rsplit(" with ", 1)[1].rstrip(")"))
    try:
        assert "RuntimeError: boom" in saved.read_text() and "Traceback" in saved.read_text()
    finally:
        saved.unlink()


# Broker that does not answer (no broker needed to test that)


def test_topics_create_on_an_unreachable_broker_is_one_line_and_exit_2() -> None:
    run = healthcode("topics", "create", HEALTHCODE_BROKER=f"kafka://127.0.0.1:{free_port()}")
    assert run.returncode == 2
    assert "cannot reach the broker at 127.0.0.1:" in one_line_error(run.stderr)


# Events files


def test_rules_explain_reads_parquet_and_finds_what_the_jsonl_shows(tmp_path: Path) -> None:
    rows = [
        {"type": "visit", "event_id": "v1", "ts": "2022-04-01T09:00:00Z", "person": "p1", "facility": "Clinic",
         "kind": "fever_clinic"},
        {"type": "test_result", "event_id": "t1", "ts": "2022-04-01T20:00:00Z", "person": "p1",
         "sampled_at": "2022-04-01T09:00:00Z", "test": "pcr", "result": "positive"},
    ]
    columns = sorted({key for row in rows for key in row})
    events = tmp_path / "events.parquet"
    pq.write_table(pa.table({name: [row.get(name) for row in rows] for name in columns}), events)
    outcome = invoke("rules", "explain", "--events", str(events), "--person", "p1", "--at", "2022-04-02T00:00:00Z",
                     "--rules", DEFAULT)
    assert outcome.exit_code == 0, outcome.output
    assert "p1 at 2022-04-02T00:00:00Z under default@1.0.0: red" in outcome.output
    assert "confirmed_case since 2022-04-01T20:00:00Z" in outcome.output
    assert "skipped" not in outcome.output


def test_rules_explain_on_a_file_that_is_not_parquet_is_a_usage_error(tmp_path: Path) -> None:
    events = tmp_path / "events.parquet"
    events.write_text('{"type": "visit"}\n')
    outcome = invoke("rules", "explain", "--events", str(events), "--person", "p1", "--at", "2022-04-02T00:00:00Z",
                     "--rules", DEFAULT)
    assert isinstance(outcome.exception, EnvironmentProblem)
    assert f"cannot read {events} as Parquet" in str(outcome.exception)


# Codes at the checkpoint


@pytest.fixture
def trust(tmp_path: Path) -> Path:
    """A trust list path: the bounds are checked before any list is read, so none need exist."""
    return tmp_path / "trust.json"


def test_code_verify_refuses_a_text_longer_than_a_qr_code_holds_before_decoding(trust: Path) -> None:
    huge = "HCQ1:" + "A" * 200_000
    for outcome in (invoke("code", "verify", "--trust", str(trust), "--stdin", stdin=huge + "\n"),
                    invoke("code", "verify", huge, "--trust", str(trust))):
        assert isinstance(outcome.exception, EnvironmentProblem), outcome.output
        assert "longer than 4,296 characters" in str(outcome.exception)


def _png(path: Path, width: int, height: int, rows: int) -> Path:
    """A grey PNG declaring `width`x`height` whose first `rows` rows are deflated zeros (tiny on disk)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    packer = zlib.compressobj(9)
    row = bytes(width + 1)
    pixels = b"".join(packer.compress(row) for _ in range(rows)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b""))
    return path


@pytest.mark.parametrize("width, height", [(8_000, 8_000), (30_000, 30_000)])
def test_code_verify_refuses_a_decompression_bomb_image_from_its_header(trust: Path, tmp_path: Path, width: int,
                                                                        height: int) -> None:
    # 8,000 x 8,000 is under PIL's own limit: only our cap stops it from inflating 64 MB.
    bomb = _png(tmp_path / "bomb.png", width, height, rows=height if width * height < 10**8 else 10)
    outcome = invoke("code", "verify", "--image", str(bomb), "--trust", str(trust))
    assert isinstance(outcome.exception, EnvironmentProblem), outcome.output
    assert f"image {bomb}" in str(outcome.exception) and "not read" in str(outcome.exception)


def test_a_simulation_config_that_is_not_utf8_is_a_usage_error(tmp_path: Path) -> None:
    config = tmp_path / "city.yaml"
    config.write_bytes(b"residents: 100\n# caf\xe9\n")
    outcome = invoke("simulate", "--config", str(config), "--out", str(tmp_path / "run"))
    assert isinstance(outcome.exception, EnvironmentProblem), outcome.output
    assert f"{config} is not UTF-8 text" in str(outcome.exception)


def test_code_verify_reads_bytes_that_are_not_utf8_from_stdin_without_failing(trust: Path) -> None:
    outcome = CliRunner().invoke(app, ["code", "verify", "--trust", str(trust), "--stdin"], input=b"HCQ1:\xff\xfe\n")
    # Past reading the code: what stops it now is the (absent) trust list.
    assert isinstance(outcome.exception, EnvironmentProblem), repr(outcome.exception)
    assert str(trust) in str(outcome.exception)
