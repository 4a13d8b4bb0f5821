"""`healthcode simulate` and `healthcode publish` as a user runs them."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
from typer.testing import CliRunner

from healthcode.cli.main import app
from healthcode.errors import HealthcodeError

runner = CliRunner()


def test_simulate_writes_the_run_and_prints_a_summary(tmp_path: Path) -> None:
    out = tmp_path / "sim"
    result = runner.invoke(
        app,
        [
            "simulate",
            "--residents",
            "300",
            "--days",
            "1",
            "--seed",
            "5",
            "--out",
            str(out),
            "--faults",
            "0.01",
            "--plot",
            str(tmp_path / "run.png"),
        ],
    )
    assert result.exit_code == 0, result.output
    for name in ("events.jsonl", "faults.jsonl", "truth.parquet", "city.json"):
        assert (out / name).stat().st_size > 0
    assert (tmp_path / "run.png").read_bytes().startswith(b"\x89PNG")
    for label in ("residents", "infections", "cases detected", "events: ping", "faults: late"):
        assert label in result.output
    assert pq.read_table(out / "truth.parquet").num_rows == 300


def test_simulate_to_parquet_injects_only_faults_that_typed_columns_can_hold(tmp_path: Path) -> None:
    result = runner.invoke(
        app,
        [
            "simulate",
            "--residents",
            "200",
            "--days",
            "1",
            "--out",
            str(tmp_path),
            "--format",
            "parquet",
            "--faults",
            "0.05",
        ],
    )
    assert result.exit_code == 0, result.output
    kinds = {
        line.split(b'"kind":"')[1].split(b'"')[0] for line in (tmp_path / "faults.jsonl").read_bytes().splitlines()
    }
    assert kinds == {b"duplicate", b"late", b"out_of_order"}
    assert pq.read_metadata(tmp_path / "events.parquet").num_rows > 0


def test_a_settings_file_sets_any_model_parameter(tmp_path: Path) -> None:
    settings = tmp_path / "sim.yaml"
    settings.write_text(
        "residents: 150\ndays: 1\ncity:\n  name: Shanghai\n  south: 31.1\n  west: 121.35\n  north: 31.35\n  east: 121.6\n"
    )
    result = runner.invoke(app, ["simulate", "--config", str(settings), "--out", str(tmp_path / "sh")])
    assert result.exit_code == 0, result.output
    assert '"name": "Shanghai"' in (tmp_path / "sh" / "city.json").read_text()


def test_invalid_settings_are_a_usage_error_with_the_reason(tmp_path: Path) -> None:
    settings = tmp_path / "bad.yaml"
    settings.write_text("city:\n  south: 31\n  north: 30\n")
    result = runner.invoke(app, ["simulate", "--config", str(settings), "--out", str(tmp_path / "x")])
    assert isinstance(result.exception, HealthcodeError) and result.exception.exit_code == 2
    assert "south < north" in str(result.exception)


def test_speed_must_be_a_positive_factor_or_max(tmp_path: Path) -> None:
    result = runner.invoke(app, ["publish", str(tmp_path / "none.jsonl"), "--speed", "fast"])
    assert result.exit_code == 2


def test_publish_refuses_parquet_with_advice(tmp_path: Path) -> None:
    (tmp_path / "events.parquet").write_bytes(b"PAR1")
    result = runner.invoke(app, ["publish", str(tmp_path / "events.parquet")])
    assert isinstance(result.exception, HealthcodeError)
    assert "--format jsonl" in str(result.exception)


def test_help_teaches_with_an_example() -> None:
    for command in ("simulate", "publish"):
        result = runner.invoke(app, [command, "--help"])
        assert result.exit_code == 0 and "Example" in result.output


def test_a_start_that_is_not_a_date_is_a_usage_error(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--start", "2022-13-01", "--out", str(tmp_path)])
    assert result.exit_code == 2
    assert "not a date" in result.output


def test_show_config_prints_settings_that_config_accepts_back(tmp_path: Path) -> None:
    shown = runner.invoke(app, ["simulate", "--show-config", "--residents", "120", "--days", "1", "--seed", "4"])
    assert shown.exit_code == 0 and "beta_venue:" in shown.output
    settings = tmp_path / "city.yaml"
    settings.write_text(shown.output)
    result = runner.invoke(app, ["simulate", "--config", str(settings), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert '"residents": 120' in (tmp_path / "run" / "city.json").read_text()


def test_out_is_required_to_run(tmp_path: Path) -> None:
    result = runner.invoke(app, ["simulate", "--residents", "50"])
    assert result.exit_code == 2 and "--out" in result.output
